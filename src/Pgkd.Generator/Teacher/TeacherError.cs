using System.ClientModel.Primitives;
using System.Text.Json;

namespace Pgkd.Generator.Teacher;

/// <summary>
/// The <c>error</c> object of an OpenAI or Azure OpenAI error body: <c>{"error": {"code", "message", "param", "type"}}</c>
/// (Azure's content filter also nests <c>innererror.code</c> <c>ResponsibleAIPolicyViolation</c>).
/// </summary>
internal sealed record TeacherError(string? Code, string? Message, string? Param)
{
    private static readonly TeacherError None = new(null, null, null);

    /// <summary>The server names the response format as the problem (older API versions, servers without structured outputs).</summary>
    public bool AboutResponseFormat =>
        Param == "response_format"
        || Message is { } m && (m.Contains("response_format", StringComparison.OrdinalIgnoreCase)
                                || m.Contains("json_schema", StringComparison.OrdinalIgnoreCase)
                                || m.Contains("json_object", StringComparison.OrdinalIgnoreCase));

    public static TeacherError Of(PipelineResponse? response)
    {
        try
        {
            var content = response?.Content;
            if (content is null || content.ToMemory().IsEmpty) return None;
            using var document = JsonDocument.Parse(content.ToMemory());
            return Of(document.RootElement);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return None;
        }
    }

    /// <summary>From an error body already parsed (a failed line of a Batch API error file).</summary>
    public static TeacherError Of(JsonElement body)
    {
        try
        {
            if (body.ValueKind != JsonValueKind.Object || !body.TryGetProperty("error", out var error) || error.ValueKind != JsonValueKind.Object)
                return None;
            string? Text(JsonElement e, string name) =>
                e.TryGetProperty(name, out var v) ? v.ValueKind switch
                {
                    JsonValueKind.String => v.GetString(),
                    JsonValueKind.Number => v.GetRawText(),
                    _ => null,
                } : null;
            var code = Text(error, "code");
            if (code is null && error.TryGetProperty("innererror", out var inner) && inner.ValueKind == JsonValueKind.Object
                && Text(inner, "code") == "ResponsibleAIPolicyViolation")
                code = "content_filter";
            return new TeacherError(code, Text(error, "message"), Text(error, "param"));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return None;
        }
    }
}
