using System.Security.Cryptography;
using System.Text;

namespace Pgkd.Core.Data;

/// <summary>
/// SHA-256 (lowercase hex) of the normalised text: the key for de-duplication and for the leakage
/// check against validation and test data, so services can share hashes instead of texts.
/// </summary>
public static class TextHash
{
    public static string Of(string text) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(TextNormalizer.Normalize(text))));

    public static HashSet<string> SetOf(IEnumerable<LabeledExample> examples) =>
        examples.Select(e => Of(e.Text)).ToHashSet(StringComparer.Ordinal);
}
