using System.Text.Json;
using System.Text.Json.Nodes;
using Pgkd.Core.Data;

namespace Pgkd.Core.Teacher;

/// <summary>
/// The reply shape <see cref="TeacherPromptBuilder.ReplySchema"/> as a JSON Schema for structured outputs
/// (<c>response_format: {"type": "json_schema", "json_schema": {"name", "strict": true, "schema"}}</c>), with
/// <c>label</c> an enum of the run's labels: a server that enforces it cannot answer a label outside the set.
/// It follows the strict mode's rules (every object lists all its properties as required and sets
/// <c>additionalProperties: false</c>), which OpenAI and Azure OpenAI check before answering.
/// </summary>
public static class TeacherReplySchema
{
    /// <summary>The schema's name in the request (<c>^[a-zA-Z0-9_-]{1,64}$</c>).</summary>
    public const string Name = "pgkd_samples";

    public static JsonObject For(LabelSet labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return new JsonObject
        {
            ["type"] = "object",
            ["properties"] = new JsonObject
            {
                ["samples"] = new JsonObject
                {
                    ["type"] = "array",
                    ["items"] = new JsonObject
                    {
                        ["type"] = "object",
                        ["properties"] = new JsonObject
                        {
                            ["text"] = new JsonObject { ["type"] = "string" },
                            ["label"] = new JsonObject
                            {
                                ["type"] = "string",
                                ["enum"] = new JsonArray(labels.Names.Select(n => (JsonNode)JsonValue.Create(n)!).ToArray()),
                            },
                        },
                        ["required"] = new JsonArray("text", "label"),
                        ["additionalProperties"] = false,
                    },
                },
            },
            ["required"] = new JsonArray("samples"),
            ["additionalProperties"] = false,
        };
    }

    /// <summary>The schema as compact JSON text.</summary>
    public static string JsonFor(LabelSet labels) => For(labels).ToJsonString(new JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary>
/// What a reply cut off at the output limit (<c>finish_reason: length</c>) means for the run: its complete items are
/// kept, the rest of the request is lost, and later requests ask for fewer samples so that they fit.
/// </summary>
public static class ReplyTruncation
{
    /// <summary>
    /// The samples per request after a reply of a <paramref name="current"/>-sample request was cut off with
    /// <paramref name="completeItems"/> whole items: a little under what fitted (items vary in length), halving when none
    /// fitted, always at least 1 and below <paramref name="current"/> (so repeated cuts keep lowering it).
    /// </summary>
    public static int NextSamplesPerRequest(int current, int completeItems)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(current);
        ArgumentOutOfRangeException.ThrowIfNegative(completeItems);
        var fits = completeItems > 0 ? (int)Math.Floor(completeItems * 0.9) : current / 2;
        return Math.Max(1, Math.Min(current - 1, fits));
    }
}
