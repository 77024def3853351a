using System.Text;
using System.Text.Json;

namespace Pgkd.Core.Data;

/// <summary>
/// Reads labeled datasets from caller-supplied streams: JSONL (<c>{"text":...,"label":...}</c> per
/// line) and CSV (RFC 4180, header with <c>text</c> and <c>label</c> columns). Either the whole file
/// is valid and a <see cref="Dataset"/> comes back, or a <see cref="DatasetFormatException"/> lists
/// the problems by source and line; a partially read dataset is never returned.
/// </summary>
public static class DatasetReader
{
    private static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = 64 };

    public static Dataset ReadJsonl(Stream stream, string source, DatasetReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= DatasetReadOptions.Default;
        var collector = new Collector(source, options);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
        var lineNumber = 0;
        while (!collector.Full && reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            ParseJsonLine(line, lineNumber, collector);
        }
        return collector.Finish(lineNumber, reader.Peek() >= 0);
    }

    public static Dataset ReadCsv(Stream stream, string source, DatasetReadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= DatasetReadOptions.Default;
        var collector = new Collector(source, options);
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, leaveOpen: true);
        var csv = new CsvRecordReader(reader);
        int textColumn = -1, labelColumn = -1, columns = 0;
        var headerSeen = false;
        while (!collector.Full && csv.Next() is { } record)
        {
            if (record.Error is not null)
            {
                collector.Error(record.Line, record.Error);
                continue;
            }
            if (record.Fields.Count == 1 && record.Fields[0].Length == 0) continue; // blank line
            if (!headerSeen)
            {
                headerSeen = true;
                var names = record.Fields.Select(f => f.Trim()).ToList();
                textColumn = names.FindIndex(n => n.Equals("text", StringComparison.OrdinalIgnoreCase));
                labelColumn = names.FindIndex(n => n.Equals("label", StringComparison.OrdinalIgnoreCase));
                columns = names.Count;
                if (textColumn < 0 || labelColumn < 0)
                {
                    collector.Error(record.Line, $"header must name the columns text and label, found: {string.Join(",", names)}");
                    return collector.Finish(record.Line, false);
                }
                continue;
            }
            if (record.Fields.Count != columns)
            {
                collector.Error(record.Line, $"expected {columns} fields, found {record.Fields.Count}");
                continue;
            }
            collector.Add(record.Line, record.Fields[textColumn], record.Fields[labelColumn], labelIndex: null);
        }
        if (!headerSeen) collector.Error(1, "missing header (expected text,label)");
        return collector.Finish(csv.Line, !collector.Full ? false : csv.Next() is not null);
    }

    private static void ParseJsonLine(string line, int lineNumber, Collector collector)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line, JsonOptions);
        }
        catch (JsonException e)
        {
            collector.Error(lineNumber, $"invalid JSON: {ShortJsonMessage(e)}");
            return;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                collector.Error(lineNumber, $"expected a JSON object, found {root.ValueKind.ToString().ToLowerInvariant()}");
                return;
            }
            if (!TryGetString(root, "text", lineNumber, collector, allowInteger: false, out var text, out _)) return;
            if (!TryGetString(root, "label", lineNumber, collector, allowInteger: collector.HasLabelSet, out var label, out var labelIndex)) return;
            collector.Add(lineNumber, text!, label, labelIndex);
        }
    }

    private static bool TryGetString(JsonElement obj, string name, int line, Collector collector, bool allowInteger,
        out string? value, out int? index)
    {
        value = null;
        index = null;
        if (!obj.TryGetProperty(name, out var prop))
        {
            collector.Error(line, $"missing field \"{name}\"");
            return false;
        }
        switch (prop.ValueKind)
        {
            case JsonValueKind.String:
                try { value = prop.GetString(); }
                catch (InvalidOperationException)
                {
                    collector.Error(line, $"field \"{name}\" is not valid Unicode text");
                    return false;
                }
                return true;
            case JsonValueKind.Number when allowInteger && prop.TryGetInt32(out var i):
                index = i;
                return true;
            default:
                collector.Error(line, $"field \"{name}\" must be a string, found {prop.ValueKind.ToString().ToLowerInvariant()}");
                return false;
        }
    }

    internal static string ShortJsonMessage(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        if (cut < 0) cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut > 0) message = message[..cut];
        return e.BytePositionInLine is { } pos ? $"{message.TrimEnd('.')} (at byte {pos})" : message;
    }

    /// <summary>Gathers examples and errors; turns them into a dataset or an exception at the end.</summary>
    private sealed class Collector(string source, DatasetReadOptions options)
    {
        private readonly List<LabeledExample> _examples = [];
        private readonly List<DatasetError> _errors = [];

        public bool HasLabelSet => options.Labels is not null;

        public bool Full => _errors.Count >= Math.Max(1, options.MaxErrors);

        public void Error(int line, string problem) => _errors.Add(new DatasetError(source, line, problem));

        public void Add(int line, string rawText, string? rawLabel, int? labelIndex)
        {
            var text = options.NormalizeText ? TextNormalizer.Normalize(rawText) : rawText;
            if (TextNormalizer.Normalize(text).Length == 0)
            {
                Error(line, "empty text");
                return;
            }
            if (text.Length > options.MaxTextLength)
            {
                Error(line, $"text is {text.Length} characters, over the limit of {options.MaxTextLength}");
                return;
            }
            string label;
            if (options.Labels is { } labels)
            {
                var ok = labelIndex is { } li
                    ? li >= 0 && li < labels.Count
                    : labels.TryResolve(rawLabel, out li);
                if (!ok)
                {
                    var shown = labelIndex?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? $"\"{rawLabel}\"";
                    Error(line, $"unknown label {shown} (known: {labels})");
                    return;
                }
                label = labels[li];
            }
            else
            {
                label = (rawLabel ?? "").Trim();
                if (label.Length == 0)
                {
                    Error(line, "empty label");
                    return;
                }
            }
            _examples.Add(new LabeledExample(text, label));
        }

        public Dataset Finish(int lastLine, bool unreadInput)
        {
            if (_errors.Count == 0 && _examples.Count == 0 && !options.AllowEmpty)
                Error(Math.Max(lastLine, 1), "no examples in the file");
            if (_errors.Count > 0)
                throw new DatasetFormatException(_errors.ToArray(), Full && unreadInput);
            return new Dataset(_examples);
        }
    }
}
