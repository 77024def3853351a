using System.Globalization;
using System.Text.Json.Nodes;

namespace Pgkd.Benchmarks.Live;

/// <summary>
/// A span as the Aspire dashboard's telemetry API (<c>/api/telemetry/spans</c>) returns it, OTLP JSON: the service
/// that emitted it, its instrumentation scope, trace id, name, times and attributes. Shared by the round-anatomy
/// benchmark and the functional tests (linked there), which read the same API.
/// </summary>
public sealed record DashboardSpan(string Service, string Scope, string TraceId, string Name, DateTime Start, DateTime End,
    IReadOnlyDictionary<string, string> Attributes, string SpanId = "", string? ParentSpanId = null, bool IsError = false,
    string? StatusMessage = null)
{
    public TimeSpan Duration => End - Start;

    public string? Attribute(string key) => Attributes.TryGetValue(key, out var v) ? v : null;

    /// <summary>
    /// The root span of one round of <paramref name="runId"/>: named <c>pgkd round {r} · run {id}</c> by the orchestrator
    /// (RunOrchestrator.RoundSpanName), so a user finds it by typing the run id or "pgkd round" in the traces filter.
    /// </summary>
    public bool IsRoundOf(string runId) =>
        Name.StartsWith("pgkd round ", StringComparison.Ordinal) && Attribute("pgkd.run_id") == runId && Attribute("pgkd.round") is not null;

    public static IReadOnlyList<DashboardSpan> Parse(JsonObject? response)
    {
        var spans = new List<DashboardSpan>();
        foreach (var resourceSpans in response?["data"]?["resourceSpans"]?.AsArray() ?? [])
        {
            var service = ReadAttributes(resourceSpans!["resource"]?["attributes"]).GetValueOrDefault("service.name", "");
            foreach (var scope in resourceSpans["scopeSpans"]?.AsArray() ?? [])
            {
                var scopeName = (string?)scope!["scope"]?["name"] ?? "";
                foreach (var span in scope["spans"]?.AsArray() ?? [])
                    spans.Add(new DashboardSpan(service, scopeName, (string)span!["traceId"]!, (string)span["name"]!,
                        Time(span["startTimeUnixNano"]), Time(span["endTimeUnixNano"]), ReadAttributes(span["attributes"]),
                        (string?)span["spanId"] ?? "", (string?)span["parentSpanId"] is { Length: > 0 } parent ? parent : null,
                        IsErrorStatus(span["status"]?["code"]), (string?)span["status"]?["message"]));
            }
        }
        return spans;
    }

    /// <summary>OTLP JSON writes the status code as a number (2 = error) or as its enum name.</summary>
    private static bool IsErrorStatus(JsonNode? code) => code is JsonValue value
        && (value.TryGetValue<int>(out var number) ? number == 2
            : value.TryGetValue<string>(out var name) && name.Contains("ERROR", StringComparison.OrdinalIgnoreCase));

    private static DateTime Time(JsonNode? nanos)
    {
        var value = nanos is JsonValue v && v.TryGetValue<string>(out var s) ? ulong.Parse(s, CultureInfo.InvariantCulture) : nanos?.GetValue<ulong>() ?? 0;
        return DateTime.UnixEpoch.AddTicks((long)(value / 100));
    }

    private static Dictionary<string, string> ReadAttributes(JsonNode? attributes) =>
        (attributes?.AsArray() ?? []).Where(a => a?["key"] is not null)
            .GroupBy(a => (string)a!["key"]!)
            .ToDictionary(g => g.Key, g => g.First()!["value"]?.AsObject().FirstOrDefault().Value?.ToString() ?? "");
}
