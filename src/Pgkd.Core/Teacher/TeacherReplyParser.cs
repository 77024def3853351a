using System.Text;
using System.Text.Json;
using Pgkd.Core.Data;

namespace Pgkd.Core.Teacher;

/// <summary>
/// Turns a teacher's reply into accepted examples and per-item rejections. It finds the JSON
/// object whether the reply is bare JSON, JSON in a code fence, or JSON after prose; then checks
/// every item of "samples" (label known by name or index, text non-empty and within length, not
/// held-out data, not a duplicate). It never throws: hostile input becomes a ReplyError or rejections.
/// </summary>
public static class TeacherReplyParser
{
    public const int MaxRejectionDetails = 200;

    /// <summary>JSON deeper than this is refused (the schema needs depth 3).</summary>
    public const int MaxJsonDepth = 32;

    /// <summary>How many '{' positions after prose are tried before giving up.</summary>
    private const int MaxCandidates = 16;

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        AllowTrailingCommas = true,
        CommentHandling = JsonCommentHandling.Skip,
        MaxDepth = MaxJsonDepth,
    };

    public static TeacherReplyParseResult Parse(string? reply, TeacherReplyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            if (string.IsNullOrWhiteSpace(reply)) return TeacherReplyParseResult.Failed("empty reply");
            if (reply.Length > context.MaxReplyChars)
                return TeacherReplyParseResult.Failed($"reply is {reply.Length} characters, over the limit of {context.MaxReplyChars}");

            var bytes = Encoding.UTF8.GetBytes(reply);
            string? firstError = null;
            foreach (var start in CandidateStarts(bytes))
            {
                var found = TryReadSamples(bytes, start.Offset, start.Length, out var error);
                if (found is not null)
                {
                    using (found)
                    {
                        return CheckItems(SamplesOf(found.RootElement), context);
                    }
                }
                firstError ??= error;
            }
            return TeacherReplyParseResult.Failed(firstError ?? "no JSON object found in the reply");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Belt and braces: tests assert this line is never reached on fuzzed input.
            return TeacherReplyParseResult.Failed($"internal error: {e.GetType().Name}");
        }
    }

    /// <summary>
    /// Parses a reply that was cut off at the output limit (<c>finish_reason: length</c>): the items of the
    /// <c>samples</c> array that are complete before the cut are checked as in <see cref="Parse"/>, the partial one
    /// and everything after it are dropped. <see cref="TeacherReplyParseResult.ItemCount"/> is the number of complete
    /// items. A reply that turns out complete parses as usual; one without a single complete item gives an empty,
    /// valid result (nothing usable, but not a malformed reply to repair: asking again would be cut off again).
    /// </summary>
    public static TeacherReplyParseResult ParseTruncated(string? reply, TeacherReplyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var whole = Parse(reply, context);
        if (whole.IsValidReply || string.IsNullOrEmpty(reply) || reply.Length > context.MaxReplyChars) return whole;
        try
        {
            var bytes = Encoding.UTF8.GetBytes(reply);
            var start = Array.IndexOf(bytes, (byte)'{');
            if (start < 0) return Empty();
            var items = CompleteItems(bytes.AsSpan(start));
            var json = new StringBuilder("{\"samples\":[");
            for (var i = 0; i < items.Count; i++)
            {
                if (i > 0) json.Append(',');
                json.Append(Encoding.UTF8.GetString(bytes, start + items[i].Offset, items[i].Length));
            }
            return Parse(json.Append("]}").ToString(), context);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return TeacherReplyParseResult.Failed($"internal error: {e.GetType().Name}");
        }

        static TeacherReplyParseResult Empty() => new([], [], new Dictionary<RejectReason, int>(), null, 0);
    }

    /// <summary>(offset, length) of each object item of the root's "samples" array that closes before the data ends.</summary>
    private static List<(int Offset, int Length)> CompleteItems(ReadOnlySpan<byte> json)
    {
        var items = new List<(int, int)>();
        // Not the final block: the reader stops where the data ends instead of calling the cut an error.
        var reader = new Utf8JsonReader(json, isFinalBlock: false, new JsonReaderState(ReaderOptions));
        var depth = 0;
        var samplesNext = false;
        var inSamples = false;
        var itemStart = -1;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        samplesNext = depth == 1 && !inSamples && string.Equals(reader.GetString(), "samples", StringComparison.OrdinalIgnoreCase);
                        break;
                    case JsonTokenType.StartArray:
                        depth++;
                        if (samplesNext && depth == 2) inSamples = true;
                        samplesNext = false;
                        break;
                    case JsonTokenType.StartObject:
                        depth++;
                        if (inSamples && depth == 3) itemStart = (int)reader.TokenStartIndex;
                        samplesNext = false;
                        break;
                    case JsonTokenType.EndObject:
                        if (inSamples && depth == 3 && itemStart >= 0) items.Add((itemStart, (int)reader.BytesConsumed - itemStart));
                        depth--;
                        break;
                    case JsonTokenType.EndArray:
                        if (inSamples && depth == 2) return items;
                        depth--;
                        break;
                    default:
                        samplesNext = false;
                        break;
                }
            }
        }
        catch (JsonException)
        {
            // Invalid JSON before the cut: keep the items that closed before it.
        }
        return items;
    }

    /// <summary>
    /// Where JSON may start, most likely first: the whole reply, the contents of code fences, then
    /// each '{' (bounded). Each candidate is (offset, length) in the UTF-8 bytes.
    /// </summary>
    private static IEnumerable<(int Offset, int Length)> CandidateStarts(byte[] bytes)
    {
        var first = Array.FindIndex(bytes, b => b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'));
        if (first >= 0 && bytes[first] == (byte)'{') yield return (first, bytes.Length - first);

        var fence = "```"u8.ToArray();
        var position = 0;
        for (var fences = 0; fences < MaxCandidates; fences++)
        {
            var open = IndexOf(bytes, fence, position);
            if (open < 0) break;
            var lineEnd = Array.IndexOf(bytes, (byte)'\n', open);
            if (lineEnd < 0) break;
            var close = IndexOf(bytes, fence, lineEnd + 1);
            if (close < 0) break;
            yield return (lineEnd + 1, close - lineEnd - 1);
            position = close + fence.Length;
        }

        var brace = -1;
        for (var tried = 0; tried < MaxCandidates; tried++)
        {
            brace = Array.IndexOf(bytes, (byte)'{', brace + 1);
            if (brace < 0) break;
            if (brace != first) yield return (brace, bytes.Length - brace);
        }
    }

    private static int IndexOf(byte[] haystack, byte[] needle, int from) =>
        from >= haystack.Length ? -1 : haystack.AsSpan(from).IndexOf(needle) is var i and >= 0 ? i + from : -1;

    /// <summary>Parses one JSON value at the offset (trailing prose allowed); returns it when it is an object with a "samples" array.</summary>
    private static JsonDocument? TryReadSamples(byte[] bytes, int offset, int length, out string? error)
    {
        error = null;
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(bytes.AsSpan(offset, length), ReaderOptions);
            document = JsonDocument.ParseValue(ref reader);
        }
        catch (JsonException e)
        {
            error = $"invalid JSON: {DatasetReader.ShortJsonMessage(e)}";
            return null;
        }
        var root = document.RootElement;
        if (root.ValueKind == JsonValueKind.Object && FindProperty(root, "samples") is { } samples)
        {
            if (samples.ValueKind == JsonValueKind.Array) return document;
            error = $"\"samples\" must be an array, found {Kind(samples)}";
        }
        else
        {
            error = root.ValueKind == JsonValueKind.Object
                ? "the JSON object has no \"samples\" field"
                : $"expected a JSON object with a \"samples\" array, found {Kind(root)}";
        }
        document.Dispose();
        return null;
    }

    private static JsonElement SamplesOf(JsonElement root) => FindProperty(root, "samples")!.Value;

    /// <summary>Property lookup that tolerates "Text" for "text": teachers vary the case.</summary>
    private static JsonElement? FindProperty(JsonElement obj, string name)
    {
        if (obj.TryGetProperty(name, out var exact)) return exact;
        foreach (var p in obj.EnumerateObject())
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)) return p.Value;
        return null;
    }

    private static string Kind(JsonElement e) => e.ValueKind.ToString().ToLowerInvariant();

    private static TeacherReplyParseResult CheckItems(JsonElement samples, TeacherReplyContext context)
    {
        var accepted = new List<LabeledExample>();
        var rejections = new List<ReplyRejection>();
        var tally = new Dictionary<RejectReason, int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var index = -1;

        void Reject(RejectReason reason, string detail)
        {
            tally[reason] = tally.GetValueOrDefault(reason) + 1;
            if (rejections.Count < MaxRejectionDetails) rejections.Add(new ReplyRejection(index, reason, detail));
        }

        foreach (var item in samples.EnumerateArray())
        {
            index++;
            if (accepted.Count >= context.MaxItems)
            {
                Reject(RejectReason.OverItemLimit, $"more than {context.MaxItems} items");
                continue;
            }
            if (item.ValueKind != JsonValueKind.Object)
            {
                Reject(RejectReason.InvalidItem, $"item is {Kind(item)}, not an object");
                continue;
            }
            if (FindProperty(item, "text") is not { } textElement)
            {
                Reject(RejectReason.MissingField, "missing \"text\"");
                continue;
            }
            if (FindProperty(item, "label") is not { } labelElement)
            {
                Reject(RejectReason.MissingField, "missing \"label\"");
                continue;
            }
            if (textElement.ValueKind != JsonValueKind.String)
            {
                Reject(RejectReason.InvalidItem, $"\"text\" is {Kind(textElement)}, not a string");
                continue;
            }
            string rawText;
            try { rawText = textElement.GetString() ?? ""; }
            catch (InvalidOperationException)
            {
                Reject(RejectReason.InvalidItem, "\"text\" is not valid Unicode");
                continue;
            }

            if (!TryResolveLabel(labelElement, context.Labels, out var label, out var labelShown))
            {
                Reject(RejectReason.UnknownLabel, $"unknown label {labelShown} (known: {context.Labels})");
                continue;
            }

            var text = TextNormalizer.Normalize(rawText);
            if (text.Length == 0)
            {
                Reject(RejectReason.EmptyText, "empty text");
                continue;
            }
            if (text.Length < context.MinTextLength)
            {
                Reject(RejectReason.TextTooShort, $"text is {text.Length} characters, under the minimum of {context.MinTextLength}");
                continue;
            }
            if (text.Length > context.MaxTextLength)
            {
                Reject(RejectReason.TextTooLong, $"text is {text.Length} characters, over the limit of {context.MaxTextLength}");
                continue;
            }
            var hash = TextHash.Of(text);
            if (context.HeldOutHashes.Contains(hash))
            {
                Reject(RejectReason.HeldOutLeakage, $"text occurs in validation or test data: {Preview(text)}");
                continue;
            }
            if (context.TrainingHashes.Contains(hash))
            {
                Reject(RejectReason.DuplicateOfTraining, $"text is already in the training data: {Preview(text)}");
                continue;
            }
            if (!seen.Add(hash))
            {
                Reject(RejectReason.DuplicateInReply, $"text repeats an earlier item: {Preview(text)}");
                continue;
            }
            accepted.Add(new LabeledExample(text, label));
        }
        return new TeacherReplyParseResult(accepted, rejections, tally, null, index + 1);
    }

    /// <summary>A label given as a name (any case) or as a zero-based index (number or digits).</summary>
    private static bool TryResolveLabel(JsonElement element, LabelSet labels, out string label, out string shown)
    {
        label = "";
        shown = element.ValueKind == JsonValueKind.String ? "" : element.GetRawText();
        if (shown.Length > 60) shown = shown[..60] + "…";
        int index;
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                string? token;
                try { token = element.GetString(); }
                catch (InvalidOperationException) { token = null; }
                shown = "\"" + Preview(token ?? "") + "\"";
                if (!labels.TryResolve(token, out index)) return false;
                break;
            case JsonValueKind.Number when element.TryGetInt32(out index) && index >= 0 && index < labels.Count:
                break;
            default:
                return false;
        }
        label = labels[index];
        return true;
    }

    private static string Preview(string text) =>
        text.Length <= 60 ? text : text[..60] + "…";
}
