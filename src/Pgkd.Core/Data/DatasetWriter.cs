using System.Text;
using System.Text.Json;

namespace Pgkd.Core.Data;

/// <summary>Writes examples as JSONL that <see cref="DatasetReader.ReadJsonl"/> reads back unchanged.</summary>
public static class DatasetWriter
{
    public static void WriteJsonl(Stream stream, IEnumerable<LabeledExample> examples)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var writer = new StreamWriter(stream, new UTF8Encoding(false), leaveOpen: true) { NewLine = "\n" };
        foreach (var e in examples)
            writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = e.Text, ["label"] = e.Label }));
    }
}
