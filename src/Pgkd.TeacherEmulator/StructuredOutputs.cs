using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Pgkd.TeacherEmulator;

/// <summary>What a request's <c>response_format</c> asks for.</summary>
public enum ReplyFormat { Text, JsonObject, JsonSchema }

/// <summary>A validated <c>response_format</c>: the type, and for json_schema its name, schema and strictness.</summary>
public sealed record ResponseFormatRequest(ReplyFormat Format, string? SchemaName = null, JsonElement? Schema = null, bool Strict = false)
{
    public static readonly ResponseFormatRequest Text = new(ReplyFormat.Text);

    public string WireName => Format switch { ReplyFormat.JsonSchema => "json_schema", ReplyFormat.JsonObject => "json_object", _ => "text" };

    /// <summary>
    /// When the schema is the samples shape (an object whose array property's items are objects with string
    /// <c>text</c> and <c>label</c>): that property's name and the label enum, if the schema gives one.
    /// </summary>
    public (string Property, IReadOnlyList<string>? LabelEnum)? SamplesShape()
    {
        if (Schema is not { } schema || !schema.TryGetProperty("properties", out var properties) || properties.ValueKind != JsonValueKind.Object)
            return null;
        foreach (var property in properties.EnumerateObject())
        {
            if (!IsType(property.Value, "array") || !property.Value.TryGetProperty("items", out var items) || !IsType(items, "object")
                || !items.TryGetProperty("properties", out var fields) || fields.ValueKind != JsonValueKind.Object
                || !fields.TryGetProperty("text", out var text) || !IsType(text, "string")
                || !fields.TryGetProperty("label", out var label) || !IsType(label, "string"))
                continue;
            IReadOnlyList<string>? labels = label.TryGetProperty("enum", out var e) && e.ValueKind == JsonValueKind.Array
                ? e.EnumerateArray().Where(v => v.ValueKind == JsonValueKind.String).Select(v => v.GetString()!).ToArray()
                : null;
            return (property.Name, labels);
        }
        return null;
    }

    private static bool IsType(JsonElement schema, string type) =>
        schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == type;
}

/// <summary>
/// The structured-outputs checks of the OpenAI and Azure OpenAI services, as far as the emulator needs them:
/// <c>response_format</c> is read and a json_schema is validated before anything else happens (a 400 naming the problem
/// in the service's words, <c>param: response_format</c>), and a reply can be checked against the schema. Strict mode's
/// rules: the root is an object; every object sets <c>additionalProperties: false</c> and lists each of its properties in
/// <c>required</c>; types are string, number, integer, boolean, object, array or null; arrays have <c>items</c>; enum
/// values match the type; at most 10 levels of nesting.
/// </summary>
public static partial class StructuredOutputs
{
    public const int MaxNesting = 10;
    private static readonly HashSet<string> Types = ["string", "number", "integer", "boolean", "object", "array", "null"];

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex NamePattern();

    /// <summary>Reads <c>response_format</c>; a problem is the 400 message.</summary>
    public static ResponseFormatRequest? Read(JsonElement root, out string? problem)
    {
        problem = null;
        if (!root.TryGetProperty("response_format", out var format) || format.ValueKind == JsonValueKind.Null) return ResponseFormatRequest.Text;
        if (format.ValueKind != JsonValueKind.Object || !format.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
        {
            problem = "Invalid type for 'response_format': expected an object with a string 'type'.";
            return null;
        }
        switch (type.GetString())
        {
            case "text": return ResponseFormatRequest.Text;
            case "json_object": return new ResponseFormatRequest(ReplyFormat.JsonObject);
            case "json_schema": break;
            default:
                problem = $"Invalid value: '{type.GetString()}'. Supported values are: 'json_object', 'json_schema', and 'text'.";
                return null;
        }
        if (!format.TryGetProperty("json_schema", out var spec) || spec.ValueKind != JsonValueKind.Object)
        {
            problem = "Missing required parameter: 'response_format.json_schema'.";
            return null;
        }
        var name = spec.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        if (name is null)
        {
            problem = "Missing required parameter: 'response_format.json_schema.name'.";
            return null;
        }
        if (!NamePattern().IsMatch(name))
        {
            problem = $"Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters, was '{name}'.";
            return null;
        }
        var strict = spec.TryGetProperty("strict", out var s) && s.ValueKind == JsonValueKind.True;
        if (!spec.TryGetProperty("schema", out var schema) || schema.ValueKind != JsonValueKind.Object)
        {
            problem = $"Invalid schema for response_format '{name}': the schema must be a JSON object.";
            return null;
        }
        if (strict && StrictProblem(schema, [], 0) is { } p)
        {
            problem = $"Invalid schema for response_format '{name}': {p}";
            return null;
        }
        return new ResponseFormatRequest(ReplyFormat.JsonSchema, name, schema.Clone(), strict);
    }

    private static string Context(List<string> path) =>
        "In context=(" + string.Join(", ", path.Select(p => $"'{p}'")) + (path.Count == 1 ? "," : "") + ")";

    private static string? StrictProblem(JsonElement schema, List<string> path, int depth)
    {
        if (depth > MaxNesting) return $"{Context(path)}, the schema is nested more than {MaxNesting} levels deep.";
        if (!schema.TryGetProperty("type", out var typeElement))
            return schema.TryGetProperty("anyOf", out _) || schema.TryGetProperty("$ref", out _) ? null : $"{Context(path)}, schema must have a 'type' key.";
        var types = typeElement.ValueKind switch
        {
            JsonValueKind.String => [typeElement.GetString()!],
            JsonValueKind.Array => typeElement.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.String ? t.GetString()! : "?").ToList(),
            _ => new List<string> { "?" },
        };
        if (types.FirstOrDefault(t => !Types.Contains(t)) is { } unknown)
            return $"{Context(path)}, '{unknown}' is not a valid type; expected one of string, number, integer, boolean, object, array, null.";
        if (depth == 0 && !types.Contains("object"))
            return "the root of the schema must be of type 'object'.";
        if (schema.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
                return $"{Context(path)}, 'enum' must be a non-empty array.";
            foreach (var value in values.EnumerateArray())
                if (!types.Any(t => Matches(value, t)))
                    return $"{Context(path)}, enum value {value.GetRawText()} does not validate against {{'type': '{string.Join("', '", types)}'}}.";
        }
        if (types.Contains("object"))
        {
            var properties = schema.TryGetProperty("properties", out var p) && p.ValueKind == JsonValueKind.Object ? p.EnumerateObject().ToList() : [];
            if (!schema.TryGetProperty("additionalProperties", out var additional) || additional.ValueKind != JsonValueKind.False)
                return $"{Context(path)}, 'additionalProperties' is required to be supplied and to be false.";
            var required = schema.TryGetProperty("required", out var r) && r.ValueKind == JsonValueKind.Array
                ? r.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToHashSet()
                : null;
            var missing = properties.Select(x => x.Name).Where(x => required is null || !required.Contains(x)).ToList();
            if (required is null || missing.Count > 0)
                return $"{Context(path)}, 'required' is required to be supplied and to be an array including every key in properties. Missing '{string.Join("', '", missing)}'.";
            foreach (var property in properties)
                if (StrictProblem(property.Value, [.. path, "properties", property.Name], depth + 1) is { } problem)
                    return problem;
        }
        if (types.Contains("array"))
        {
            if (!schema.TryGetProperty("items", out var items) || items.ValueKind != JsonValueKind.Object)
                return $"{Context(path)}, array schema missing items.";
            if (StrictProblem(items, [.. path, "items"], depth + 1) is { } problem) return problem;
        }
        return null;
    }

    private static bool Matches(JsonElement value, string type) => type switch
    {
        "string" => value.ValueKind == JsonValueKind.String,
        "number" => value.ValueKind == JsonValueKind.Number,
        "integer" => value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out _),
        "boolean" => value.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => value.ValueKind == JsonValueKind.Null,
        "object" => value.ValueKind == JsonValueKind.Object,
        "array" => value.ValueKind == JsonValueKind.Array,
        _ => false,
    };

    /// <summary>Whether <paramref name="value"/> conforms to <paramref name="schema"/> (types, enums, required, no extra properties).</summary>
    public static bool Conforms(JsonElement value, JsonElement schema)
    {
        if (schema.ValueKind != JsonValueKind.Object) return true;
        if (schema.TryGetProperty("type", out var t))
        {
            var types = t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [t.GetString() ?? ""];
            if (!types.Any(type => Matches(value, type))) return false;
        }
        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array
            && !values.EnumerateArray().Any(v => JsonElement.DeepEquals(v, value)))
            return false;
        if (value.ValueKind == JsonValueKind.Object)
        {
            var properties = schema.TryGetProperty("properties", out var p) && p.ValueKind == JsonValueKind.Object ? p : default;
            if (schema.TryGetProperty("required", out var required) && required.ValueKind == JsonValueKind.Array
                && required.EnumerateArray().Any(r => !value.TryGetProperty(r.GetString() ?? "", out _)))
                return false;
            foreach (var property in value.EnumerateObject())
            {
                if (properties.ValueKind == JsonValueKind.Object && properties.TryGetProperty(property.Name, out var sub))
                {
                    if (!Conforms(property.Value, sub)) return false;
                }
                else if (schema.TryGetProperty("additionalProperties", out var additional) && additional.ValueKind == JsonValueKind.False)
                    return false;
            }
        }
        if (value.ValueKind == JsonValueKind.Array && schema.TryGetProperty("items", out var items))
            return value.EnumerateArray().All(v => Conforms(v, items));
        return true;
    }

    /// <summary>
    /// A small instance of a schema that is not the samples shape (the emulator writes no prose): the first enum value,
    /// "example" for strings, 0, false, empty arrays, objects with every property.
    /// </summary>
    public static JsonNode? Instance(JsonElement schema, int depth = 0)
    {
        if (schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array && values.GetArrayLength() > 0)
            return JsonNode.Parse(values[0].GetRawText());
        var type = schema.TryGetProperty("type", out var t)
            ? t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()).FirstOrDefault(x => x != "null") ?? "null" : t.GetString()
            : "object";
        switch (type)
        {
            case "string": return JsonValue.Create("example");
            case "number":
            case "integer": return JsonValue.Create(0);
            case "boolean": return JsonValue.Create(false);
            case "array": return new JsonArray();
            case "object":
                var obj = new JsonObject();
                if (depth < MaxNesting && schema.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object)
                    foreach (var property in properties.EnumerateObject())
                        obj[property.Name] = Instance(property.Value, depth + 1);
                return obj;
            default: return null;
        }
    }
}
