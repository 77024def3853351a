using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Pgkd.Cli;

/// <summary>A run's manifest (GET /v1/runs/{id}) as a console view: header, progress bar, one table row per round.</summary>
public static class StatusView
{
    public static string Status(JsonNode run) => (string?)run["status"] ?? "Unknown";

    public static bool IsFinished(JsonNode run) => Status(run) is "Completed" or "Failed" or "Cancelled";

    /// <summary>Rounds with a validation score, and how many the run may have (round 0 plus the teacher rounds).</summary>
    public static (int Done, int Total) Progress(JsonNode run)
    {
        var done = Rounds(run).Count(r => r["accuracy"] is not null);
        var total = ((int?)run["configuration"]?["maxRounds"] ?? 0) + 1;
        return (done, Math.Max(total, done));
    }

    public static IRenderable Render(JsonNode run)
    {
        var status = Status(run);
        var color = status switch { "Completed" => "green", "Failed" => "red", "Cancelled" => "grey", _ => "blue" };
        var best = (int?)run["bestRound"];
        var (done, total) = Progress(run);

        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("round", "requested", "accepted", "rejected", "tokens", "cost (USD)", "val. loss", "accuracy", "macro-F1");
        foreach (var c in table.Columns.Skip(1)) c.RightAligned();
        foreach (var r in Rounds(run))
        {
            var round = (int?)r["round"] ?? 0;
            var rejected = r["rejectedByReason"] is JsonObject reasons ? reasons.Sum(kv => (int?)kv.Value ?? 0) : 0;
            var cells = new[]
            {
                round == best ? $"{round} ★" : round.ToString(CultureInfo.InvariantCulture),
                Int(r["requested"]), Int(r["accepted"]), rejected.ToString(CultureInfo.InvariantCulture), Int(r["teacherTokens"]),
                Number(r["teacherCostUsd"], "0.0000"), Number(r["validationLoss"], "0.0000"), Percent(r["accuracy"]), Percent(r["macroF1"]),
            };
            table.AddRow(cells.Select(c => round == best ? new Markup($"[bold yellow]{Markup.Escape(c)}[/]") : new Markup(Markup.Escape(c))));
        }

        var lines = new List<IRenderable>
        {
            new Markup($"Run [bold]{Markup.Escape((string?)run["runId"] ?? "?")}[/]  [{color}]{status}[/]"),
            new Markup($"{Bar(done, total, 30)} {done}/{total} rounds evaluated"),
            table,
        };
        var summary = new List<string>();
        if (best is { } b) summary.Add($"best round {b}");
        if (run["testReport"] is JsonObject test) summary.Add($"test accuracy {Percent(test["accuracy"])}, macro-F1 {Percent(test["macroF1"])}");
        var tokens = Rounds(run).Sum(r => (long?)r["teacherTokens"] ?? 0);
        var cost = Rounds(run).Sum(r => (decimal?)r["teacherCostUsd"] ?? 0);
        var cached = Rounds(run).Sum(r => (long?)r["cachedPromptTokens"] ?? 0);
        var saved = Rounds(run).Sum(r => (decimal?)r["cachedSavingsUsd"] ?? 0);
        summary.Add($"teacher {tokens:N0} tokens, ${cost.ToString("0.0000", CultureInfo.InvariantCulture)}" +
                    (cached > 0 ? $" ({cached:N0} prompt tokens cached, saved ${saved.ToString("0.0000", CultureInfo.InvariantCulture)})" : ""));
        lines.Add(new Markup(Markup.Escape(string.Join(" · ", summary))));
        if (TeacherFaults(run) is { } faults) lines.Add(new Markup(Markup.Escape(faults)));
        if ((string?)run["stopReason"] is { } stop) lines.Add(new Markup($"[grey]stopped: {Markup.Escape(stop)}[/]"));
        if ((string?)run["failureReason"] is { } failure) lines.Add(new Markup($"[red]failed: {Markup.Escape(failure)}[/]"));
        return new Rows(lines);
    }

    /// <summary>
    /// The run's teacher faults summed over its rounds, or null when there were none: attempts retried by cause
    /// (<c>rounds[].teacherRetriesByCause</c>), malformed replies repaired and unusable, samples rejected by reason.
    /// </summary>
    public static string? TeacherFaults(JsonNode run)
    {
        static Dictionary<string, int> Sum(IEnumerable<JsonNode> rounds, string field)
        {
            var total = new SortedDictionary<string, int>(StringComparer.Ordinal);
            foreach (var r in rounds)
                if (r[field] is JsonObject counts)
                    foreach (var (key, value) in counts)
                        total[key] = total.GetValueOrDefault(key) + ((int?)value ?? 0);
            return total.Where(p => p.Value > 0).ToDictionary(p => p.Key, p => p.Value);
        }
        var rounds = Rounds(run).ToList();
        var retries = Sum(rounds, "teacherRetriesByCause");
        var rejected = Sum(rounds, "rejectedByReason");
        var repaired = rounds.Sum(r => (int?)r["repairedReplies"] ?? 0);
        var unusable = rounds.Sum(r => (int?)r["unusableReplies"] ?? 0);
        var parts = new List<string>();
        var modes = rounds.Select(r => (string?)r["responseMode"]).OfType<string>().Distinct().ToList();
        if (modes.Count > 0 && !(modes is ["json_schema"]))
            parts.Add($"response format {string.Join(" then ", modes)}");
        if (rounds.Any(r => (string?)r["teacherApi"] == "batch")) parts.Add("Batch API");
        var promptsFiltered = rounds.Sum(r => (int?)r["promptsFiltered"] ?? 0);
        var repliesFiltered = rounds.Sum(r => (int?)r["repliesFiltered"] ?? 0);
        if (promptsFiltered + repliesFiltered > 0) parts.Add($"content filter: {promptsFiltered} prompts refused, {repliesFiltered} replies withheld");
        var truncated = rounds.Sum(r => (int?)r["truncatedReplies"] ?? 0);
        if (truncated > 0)
            parts.Add($"{truncated} replies cut off ({rounds.Sum(r => (int?)r["samplesLostToTruncation"] ?? 0)} samples lost, " +
                      $"{rounds.Select(r => (int?)r["samplesPerRequest"]).LastOrDefault(n => n is not null)} per request now)");
        if (retries.Count > 0) parts.Add($"teacher retries {string.Join(", ", retries.Select(p => $"{p.Key} ×{p.Value}"))}");
        if (repaired + unusable > 0) parts.Add($"malformed replies: {repaired} repaired, {unusable} unusable");
        if (rejected.Count > 0) parts.Add($"rejected {string.Join(", ", rejected.Select(p => $"{p.Key} {p.Value}"))}");
        return parts.Count == 0 ? null : string.Join(" · ", parts);
    }

    /// <summary>A text progress bar (Spectre's ProgressBar widget is built for tasks it drives itself, not for a polled state).</summary>
    public static string Bar(int done, int total, int width)
    {
        var filled = total <= 0 ? 0 : (int)Math.Round(width * Math.Clamp(done / (double)total, 0, 1));
        return $"[green]{new string('━', filled)}[/][grey]{new string('━', width - filled)}[/]";
    }

    private static IEnumerable<JsonNode> Rounds(JsonNode run) => run["rounds"] is JsonArray rounds ? rounds.OfType<JsonNode>() : [];
    private static string Int(JsonNode? n) => n is null ? "–" : ((long)n).ToString("N0", CultureInfo.InvariantCulture);
    private static string Number(JsonNode? n, string format) => n is JsonValue v && v.TryGetValue<double>(out var d) ? d.ToString(format, CultureInfo.InvariantCulture) : "–";
    internal static string Percent(JsonNode? n) => n is JsonValue v && v.TryGetValue<double>(out var d) ? (d * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "–";
}
