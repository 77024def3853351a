using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Pgkd.Cli;

/// <summary>
/// <c>pgkd run --dry-run</c>: the gateway's forecast (POST /v1/runs?dryRun=true) of the most a run can cost, per
/// teacher round and in all, within 80 columns.
/// </summary>
public static class ForecastView
{
    public static IRenderable Render(JsonNode forecast)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("round", "teacher calls", "prompt tokens", "completion tokens", "USD");
        foreach (var c in table.Columns.Skip(1)) c.RightAligned();
        var rounds = forecast["rounds"]?.AsArray().Where(r => r is not null).Select(r => r!).ToList() ?? [];
        foreach (var r in rounds)
            table.AddRow(Int(r["round"]), Int(r["teacherCalls"]), Int(r["promptTokens"]), Int(r["completionTokens"]), Usd(r["costUsd"]));
        table.AddRow("[bold]all[/]", $"[bold]{Int(forecast["teacherCalls"])}[/]", $"[bold]{Int(forecast["promptTokens"])}[/]",
            $"[bold]{Int(forecast["completionTokens"])}[/]", $"[bold]{Usd(forecast["costUsd"])}[/]");

        var lines = new List<IRenderable>
        {
            new Markup($"[bold]The most this run can cost[/] (nothing was started)"),
            table,
            new Markup(Markup.Escape(
                $"teacher {(string?)forecast["model"]} · tokenizer {(string?)forecast["tokenizer"]} · " +
                $"{Int(forecast["samplesPerRequest"])} samples a call · at most {Int(forecast["promptTokensPerCall"])} prompt tokens a call")),
            new Markup(Markup.Escape(forecast["maxOutputTokens"] is { } cap
                ? $"completion: at most {Int(cap)} tokens a call (Teacher:MaxOutputTokens)"
                : $"completion: {Int(forecast["completionTokensPerSample"])} tokens a sample of maxTextLength characters (Teacher:MaxOutputTokens caps it)")),
        };
        if ((bool?)forecast["batchApi"] == true) lines.Add(new Markup("priced at the Batch API's rate"));
        if ((bool?)forecast["hasPrice"] == false)
            lines.Add(new Markup($"[yellow]{Markup.Escape($"no price for {(string?)forecast["model"]} in Teacher:Prices: the dollars are 0 and a $ budget never stops it")}[/]"));
        if ((int?)forecast["lastAffordableRound"] is { } last)
            lines.Add(new Markup($"[yellow]{Markup.Escape(
                $"the run's budget ({Int(forecast["tokenBudget"])} tokens, {Usd(forecast["costBudgetUsd"])}) would stop it after round {last} at worst")}[/]"));
        return new Rows(lines);
    }

    private static string Int(JsonNode? n) => ((long?)n ?? 0).ToString("N0", CultureInfo.InvariantCulture);

    private static string Usd(JsonNode? n) => "$" + ((decimal?)n ?? 0m).ToString("0.0000", CultureInfo.InvariantCulture);
}
