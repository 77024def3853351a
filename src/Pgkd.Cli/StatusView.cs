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

    /// <summary>
    /// Columns dropped, in this order, until the table fits the console: tokens and cost first (the line under the
    /// table sums them), then requested, the validation loss, rejected and macro-F1. Headers are never cut; round,
    /// accepted, accuracy and (in a split run) selection always stay.
    /// </summary>
    public static readonly IReadOnlyList<string> DropOrder = ["tokens", "cost (USD)", "requested", "val. loss", "rejected", "macro-F1"];

    /// <summary>The run as rows of text, fitted to <paramref name="width"/> console columns (a log or pipe: 80).</summary>
    public static IRenderable Render(JsonNode run, int width = int.MaxValue)
    {
        var status = Status(run);
        var color = status switch { "Completed" => "green", "Failed" => "red", "Cancelled" => "grey", _ => "blue" };
        var best = (int?)run["bestRound"];
        var (done, total) = Progress(run);
        var split = run["selectionValidation"] is JsonObject;

        // Every column with its cells, then the widest set that fits.
        var columns = new List<(string Header, Func<JsonNode, int, string> Cell)>
        {
            ("round", (r, round) => round == best ? $"{round} ★" : round.ToString(CultureInfo.InvariantCulture)),
            ("requested", (r, _) => Int(r["requested"])),
            ("accepted", (r, _) => Int(r["accepted"])),
            ("rejected", (r, _) => (r["rejectedByReason"] is JsonObject reasons ? reasons.Sum(kv => (int?)kv.Value ?? 0) : 0).ToString(CultureInfo.InvariantCulture)),
            ("tokens", (r, _) => Int(r["teacherTokens"])),
            ("cost (USD)", (r, _) => Number(r["teacherCostUsd"], "0.0000")),
            ("val. loss", (r, _) => Number(r["validationLoss"], "0.0000")),
            ("accuracy", (r, _) => Percent(r["accuracy"])),
            ("macro-F1", (r, _) => Percent(r["macroF1"])),
        };
        // With a split the rounds are judged on the selection part: its accuracy is the figure the best round was chosen on.
        if (split) columns.Add(("selection", (r, _) => Percent(r["selectionAccuracy"])));
        var rounds = Rounds(run).Select(r => (Node: r, Round: (int?)r["round"] ?? 0)).ToList();
        var cells = columns.Select(c => rounds.Select(r => c.Cell(r.Node, r.Round)).ToList()).ToList();
        int Needed(int i) => Math.Max(columns[i].Header.Length, cells[i].Select(x => x.Length + (x.Contains('★') ? 1 : 0)).DefaultIfEmpty(0).Max()) + 3;
        var kept = Enumerable.Range(0, columns.Count).ToList();
        foreach (var drop in DropOrder)
        {
            if (1 + kept.Sum(Needed) <= width) break;
            kept.Remove(columns.FindIndex(c => c.Header == drop));
        }

        var table = new Table().Border(TableBorder.Rounded);
        foreach (var i in kept)
        {
            var column = new TableColumn(columns[i].Header).NoWrap();
            if (i > 0) column.RightAligned();
            table.AddColumn(column);
        }
        for (var row = 0; row < rounds.Count; row++)
        {
            var isBest = rounds[row].Round == best;
            table.AddRow(kept.Select(i => cells[i][row]).Select(c => isBest ? new Markup($"[bold yellow]{Markup.Escape(c)}[/]") : new Markup(Markup.Escape(c))));
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
        if ((string?)run["bestRoundChosenOn"] is { } chosen) lines.Add(new Markup($"[grey]{Markup.Escape(chosen)}[/]"));
        foreach (var r in Rounds(run))
            if (r["teacherShortfall"] is JsonObject shortfall)
                lines.Add(new Markup($"[red]round {(int?)r["round"]}: {Markup.Escape((string?)shortfall["cause"] ?? "")}.[/] [yellow]Fix:[/] {Markup.Escape((string?)shortfall["fix"] ?? "")}"));
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
