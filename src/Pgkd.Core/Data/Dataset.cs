using System.Security.Cryptography;
using System.Text;

namespace Pgkd.Core.Data;

/// <summary>
/// An immutable list of labeled examples with a content hash that names this dataset version.
/// </summary>
public sealed class Dataset
{
    private readonly LabeledExample[] _examples;
    private string? _contentHash;

    public Dataset(IEnumerable<LabeledExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        _examples = examples.ToArray();
        if (_examples.Any(e => e is null || e.Text is null || e.Label is null))
            throw new ArgumentException("Examples and their text and label must not be null.", nameof(examples));
    }

    public static Dataset Empty { get; } = new([]);

    public IReadOnlyList<LabeledExample> Examples => _examples;

    public int Count => _examples.Length;

    /// <summary>
    /// SHA-256 hex over the examples in order (each as the UTF-8 length-prefixed normalised text and
    /// label). Order matters on purpose: the trainer's seeded shuffle starts from this order, so the
    /// same examples in another order can train a different model and are a different version.
    /// </summary>
    public string ContentHash => _contentHash ??= ComputeContentHash(_examples);

    /// <summary>Keeps the first example of each normalised text (by <see cref="TextHash"/>), whatever its label.</summary>
    public Dataset Deduplicate()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        return new Dataset(_examples.Where(e => seen.Add(TextHash.Of(e.Text))));
    }

    /// <summary>The examples whose normalised text (<see cref="TextHash"/>) is not in <paramref name="hashes"/>.</summary>
    public Dataset Without(IReadOnlySet<string> hashes) => new(_examples.Where(e => !hashes.Contains(TextHash.Of(e.Text))));

    /// <summary>This dataset followed by <paramref name="more"/> (e.g. a round's accepted teacher samples).</summary>
    public Dataset Append(IEnumerable<LabeledExample> more) => new(_examples.Concat(more));

    /// <summary>How many examples each label has, in label-set order.</summary>
    public IReadOnlyList<int> CountByLabel(LabelSet labels)
    {
        var counts = new int[labels.Count];
        foreach (var i in LabelIndices(labels)) counts[i]++;
        return counts;
    }

    /// <summary>Each example's label as its index in <paramref name="labels"/> (the truth a student is scored against).</summary>
    public IReadOnlyList<int> LabelIndices(LabelSet labels) =>
        _examples.Select(e => labels.IndexOf(e.Label) is var i and >= 0
            ? i
            : throw new ArgumentException($"Label \"{e.Label}\" is not in the label set ({labels}).", nameof(labels))).ToArray();

    /// <summary>Hashes of every normalised text, for duplicate and leakage checks.</summary>
    public HashSet<string> TextHashes() => TextHash.SetOf(_examples);

    private static string ComputeContentHash(LabeledExample[] examples)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> len = stackalloc byte[4];
        foreach (var e in examples)
        {
            foreach (var part in new[] { TextNormalizer.Normalize(e.Text), e.Label })
            {
                var bytes = Encoding.UTF8.GetBytes(part);
                // Length prefixes keep ("ab","c") and ("a","bc") apart.
                System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(len, bytes.Length);
                sha.AppendData(len);
                sha.AppendData(bytes);
            }
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
