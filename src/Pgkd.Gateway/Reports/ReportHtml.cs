using System.Globalization;
using System.Net;
using System.Text;
using Pgkd.Core.Metrics;
using Pgkd.Core.Teacher;
using Pgkd.Storage;

namespace Pgkd.Gateway.Reports;

/// <summary>
/// The report pages as HTML strings: pure functions of the run data, inline CSS, SVG from <see cref="SvgCharts"/>,
/// no script and nothing fetched from elsewhere, so they render offline and the tests can read them as text.
/// </summary>
public static class ReportHtml
{
    private const string Css = """
        :root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24; background: #f6f7f9; }
        body { margin: 0; }
        header { background: #1b2a41; color: #fff; padding: 10px 24px; display: flex; gap: 24px; align-items: center; }
        header a { color: #cfe3ff; text-decoration: none; } header .brand { font-weight: 700; color: #fff; }
        header form { margin-left: auto; } header button { background: none; border: 1px solid #cfe3ff; color: #cfe3ff; border-radius: 4px; cursor: pointer; }
        main { max-width: 1500px; margin: 0 auto; padding: 16px 24px 40px; }
        h1 { font-size: 1.35rem; margin: 8px 0; } h2 { font-size: 1.1rem; margin: 26px 0 8px; }
        .muted { color: #5b6673; } .mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; }
        .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 12px 0; }
        .card { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 10px 14px; min-width: 130px; }
        .card .k { font-size: .8rem; color: #5b6673; } .card .v { font-size: 1.3rem; font-weight: 600; }
        .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 14px; }
        .panel { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 8px; overflow-x: auto; }
        svg.chart { max-width: 100%; height: auto; font-size: 11px; } svg.line-chart, svg.bar-chart { width: 100%; } svg .title { font-weight: 600; font-size: 13px; }
        svg .tick { fill: #444; } svg .axis-name { fill: #5b6673; font-style: italic; }
        table { border-collapse: collapse; background: #fff; font-size: .9rem; }
        th, td { border: 1px solid #dde1e6; padding: 4px 8px; text-align: right; vertical-align: top; }
        th { background: #eef1f4; } td.text { text-align: left; max-width: 640px; }
        tr.best td { background: #fff7d6; font-weight: 600; }
        .status { padding: 2px 8px; border-radius: 10px; font-size: .85rem; color: #fff; }
        .Running { background: #0b6bcb; } .Completed { background: #1a7f37; } .Failed { background: #c62828; } .Cancelled { background: #6e7781; }
        .wrong { color: #c62828; font-weight: 600; }
        .login { max-width: 420px; margin: 60px auto; background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 20px 24px; }
        .login input { width: 100%; box-sizing: border-box; padding: 6px; margin: 8px 0 12px; }
        .error { color: #c62828; }
        """;

    public static string Page(string title, string body, bool signedIn = true, int? refreshSeconds = null)
    {
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
        if (refreshSeconds is { } s) html.Append($"<meta http-equiv=\"refresh\" content=\"{s}\">");
        html.Append($"<title>{E(title)} · PGKD</title><style>{Css}</style></head><body>")
            .Append("<header><span class=\"brand\">PGKD</span>");
        if (signedIn)
            html.Append("<a href=\"/runs\">Runs</a><a href=\"/scalar\">API</a>")
                .Append("<form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>");
        return html.Append("</header><main>").Append(body).Append("</main></body></html>").ToString();
    }

    public static string Login(string? error, string returnUrl) => Page("Sign in", $"""
        <form class="login" method="post" action="/login">
          <h1>Sign in</h1>
          <p class="muted">Run reports show your data: enter the gateway's API key (the one the <span class="mono">pgkd</span> CLI and
          <span class="mono">X-Api-Key</span> use).</p>
          {(error is null ? "" : $"<p class=\"error\" role=\"alert\">{E(error)}</p>")}
          <label for="key">API key</label>
          <input id="key" name="apiKey" type="password" autocomplete="current-password" required autofocus>
          <input type="hidden" name="returnUrl" value="{E(returnUrl)}">
          <button type="submit">Sign in</button>
        </form>
        """, signedIn: false);

    public static string RunsList(IReadOnlyList<RunManifest> runs)
    {
        var body = new StringBuilder("<h1>Distillation runs</h1>");
        if (runs.Count == 0)
            return Page("Runs", body.Append("<p class=\"muted\">No runs yet. Start one with <span class=\"mono\">pgkd run</span> or POST /v1/runs.</p>").ToString());
        body.Append("<table id=\"runs\"><thead><tr><th>run</th><th>status</th><th>created (UTC)</th><th>rounds</th><th>best round</th>")
            .Append("<th>val. accuracy</th><th>test accuracy</th><th>teacher tokens</th><th>cost (USD)</th></tr></thead><tbody>");
        foreach (var m in runs)
        {
            var best = m.BestRound is { } b ? m.Round(b) : null;
            body.Append($"<tr data-run=\"{m.RunId:D}\"><td class=\"text mono\"><a href=\"/runs/{m.RunId:D}\">{m.RunId:D}</a></td>")
                .Append($"<td><span class=\"status {m.Status}\">{m.Status}</span></td><td>{m.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm}</td>")
                .Append($"<td>{m.Rounds.Count(r => r.Accuracy is not null)}</td><td>{m.BestRound?.ToString(CultureInfo.InvariantCulture) ?? "–"}</td>")
                .Append($"<td>{P(best?.Accuracy)}</td><td>{P(m.TestReport?.Accuracy)}</td><td>{m.TeacherTokens:N0}</td><td>{Usd(m.TeacherCostUsd)}</td></tr>");
        }
        return Page("Runs", body.Append("</tbody></table>").ToString(), refreshSeconds: runs.Any(r => !r.IsFinished) ? 10 : null);
    }

    public static string RunReport(RunReportModel model)
    {
        var m = model.Manifest;
        var labels = model.Labels;
        var rounds = model.Rounds;
        var names = rounds.Select(r => $"r{r.Record.Round}").ToList();
        var teacherRounds = rounds.Where(r => r.Record.Round > 0).ToList();
        var teacherNames = teacherRounds.Select(r => $"r{r.Record.Round}").ToList();
        var best = model.Best;
        var body = new StringBuilder();

        body.Append($"<h1>Run <span class=\"mono\">{m.RunId:D}</span> <span class=\"status {m.Status}\" id=\"run-status\">{m.Status}</span></h1>")
            .Append($"<p class=\"muted\">Created {m.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC · updated {m.UpdatedAt.UtcDateTime:HH:mm:ss} · ")
            .Append($"{E(m.Configuration.Strategy.ToString())}, student {E(m.Student.Mode)} · up to {m.Configuration.MaxRounds} teacher rounds of {m.Configuration.SamplesPerRound} samples")
            .Append(m.SelectionValidation is { } sel
                ? $" · validation split: {m.FeedbackData.Count} feedback (shown to the teacher), {sel.Count} selection (judges rounds)"
                : " · one validation set (feedback and selection)")
            .Append(m.Pool is { } pool ? $" · teacher emulator pool: this run's own ({pool.Count} texts)" : "")
            .Append(m.StopReason is { } stop ? $" · stopped: {E(stop)}" : "")
            .Append(m.Code is { } code ? $" · code <span class=\"mono\">{E(code)}</span>" : "")
            .Append("</p>");
        if (m.FailureReason is { } failure) body.Append($"<p class=\"error\">Failed: {E(failure)}</p>");

        body.Append("<div class=\"cards\" id=\"summary\">")
            .Append(Card("best round", m.BestRound?.ToString(CultureInfo.InvariantCulture) ?? "–", "best-round"))
            .Append(Card("validation accuracy (best)", P(best?.Record.Accuracy), "best-accuracy"))
            .Append(Card("validation macro-F1 (best)", P(best?.Record.MacroF1), "best-macro-f1"))
            .Append(Card("test accuracy", P(m.TestReport?.Accuracy), "test-accuracy"))
            .Append(Card("test macro-F1", P(m.TestReport?.MacroF1), "test-macro-f1"))
            .Append(Card("teacher tokens", m.TeacherTokens.ToString("N0", CultureInfo.InvariantCulture), "teacher-tokens"))
            .Append(Card("teacher cost", Usd(m.TeacherCostUsd), "teacher-cost"))
            .Append(Card("cached prompt tokens", $"{m.CachedPromptTokens.ToString("N0", CultureInfo.InvariantCulture)} (saved {Usd(m.CachedSavingsUsd)})", "teacher-cached"))
            .Append("</div>");
        if (TeacherLine(m) is { } teacher) body.Append($"<p class=\"muted\" id=\"teacher-behaviour\">{E(teacher)}</p>");
        if (m.BestRoundChosenOn is { } chosen) body.Append($"<p class=\"muted\" id=\"chosen-on\">{E(chosen)}</p>");
        // A round the teacher gave nothing although it answered: the cause and the fix, where the user looks first.
        foreach (var r in m.Rounds.Where(r => r.TeacherShortfall is not null))
            body.Append($"<p class=\"error teacher-shortfall\" id=\"teacher-shortfall-{r.Round}\">Round {r.Round}: {E(r.TeacherShortfall!.Cause)}. ")
                .Append($"<strong>Fix:</strong> {E(r.TeacherShortfall.Fix)}</p>");

        body.Append("<h2>Per round</h2><div class=\"charts\">")
            .Append(Panel(SvgCharts.Line("chart-quality", "Validation accuracy and macro-F1", names,
                [new("accuracy", rounds.Select(r => r.Record.Accuracy).ToList()), new("macro-F1", rounds.Select(r => r.Record.MacroF1).ToList()),
                 .. m.SelectionValidation is null ? Array.Empty<ChartSeries>() : [new("selection accuracy", rounds.Select(r => r.Record.SelectionAccuracy).ToList())]],
                "0.00", 0, 1)))
            .Append(Panel(SvgCharts.Line("chart-loss", "Validation loss (cross-entropy)", names,
                [new("validation loss", rounds.Select(r => r.Record.ValidationLoss).ToList())], "0.000")))
            .Append(Panel(SvgCharts.Bars("chart-accepted", "Teacher samples accepted per class", teacherNames,
                labels.Select((label, i) => new ChartSeries(label, teacherRounds.Select(r => r.AcceptedByClass is { } a ? a[i] : (double?)null).ToList())).ToList())))
            .Append(Panel(RejectedChart(teacherRounds, teacherNames)))
            .Append(Panel(SvgCharts.Bars("chart-tokens", "Teacher tokens", teacherNames,
                [new("tokens", teacherRounds.Select(r => (double?)r.Record.TeacherTokens).ToList())])))
            .Append(Panel(SvgCharts.Bars("chart-cost", "Teacher cost (USD)", teacherNames,
                [new("cost", teacherRounds.Select(r => (double?)r.Record.TeacherCostUsd).ToList())], "0.0000##")))
            .Append("</div>");

        body.Append("<h2>Rounds</h2><table id=\"rounds\"><thead><tr><th>round</th><th>requested</th><th title=\"the fewest and most asked of one class; the round's floor and cap\">per class</th><th>accepted</th><th>rejected</th>")
            .Append("<th>tokens</th><th>cost (USD)</th><th>train ex/s</th><th>val. loss</th><th>accuracy</th><th>macro-F1</th><th>selection acc.</th></tr></thead><tbody>");
        foreach (var (r, guidance) in rounds.Select(v => (v.Record, v.Guidance)))
            body.Append($"<tr{(r.Round == m.BestRound ? " class=\"best\" title=\"best round\"" : "")}><td>{r.Round}{(r.Round == m.BestRound ? " ★" : "")}</td>")
                .Append($"<td>{r.Requested}</td><td>{PerClass(guidance)}</td><td>{r.Accepted}</td><td>{r.RejectedByReason.Values.Sum()}</td><td>{r.TeacherTokens:N0}</td>")
                .Append($"<td>{Usd(r.TeacherCostUsd)}</td><td>{N(r.ExamplesPerSecond, "0.0")}</td><td>{N(r.ValidationLoss, "0.0000")}</td>")
                .Append($"<td>{P(r.Accuracy)}</td><td>{P(r.MacroF1)}</td><td>{P(r.SelectionAccuracy)}</td></tr>");
        body.Append("</tbody></table>");
        if (m.Forecast is { } forecast) body.Append(ForecastTable(forecast, m));

        body.Append("<h2>Where the student errs</h2><div class=\"charts\">");
        if (model.HeadlineMatrix is { } headline)
            body.Append(Panel(SvgCharts.Heatmap("heatmap-headline", headline.Title, labels, headline.Report.ConfusionMatrix)));
        if (m.TestReport is not null && best?.Validation is { } bv)
            body.Append(Panel(SvgCharts.Heatmap("heatmap-validation", $"Confusion matrix, validation, round {bv.Round}", labels, bv.Report.ConfusionMatrix)));
        body.Append("</div>");
        if (m.TestReport is { } test) body.Append("<h2>Test scores per class</h2>").Append(PerClass("test-per-class", test));
        else if (best?.Validation is { } v) body.Append($"<h2>Validation scores per class (round {v.Round})</h2>").Append(PerClass("validation-per-class", v.Report));

        body.Append(HardNegatives(model));
        return Page($"Run {m.RunId:D}", body.ToString(), refreshSeconds: m.IsFinished ? null : 10);
    }

    private static string RejectedChart(IReadOnlyList<RoundView> teacherRounds, IReadOnlyList<string> names)
    {
        var reasons = teacherRounds.SelectMany(r => r.Record.RejectedByReason.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        // Rejections are tallied by reason (the generator does not keep the rejected samples' labels).
        return reasons.Count == 0
            ? SvgCharts.Bars("chart-rejected", "Teacher samples rejected (none)", names, [new("rejected", teacherRounds.Select(_ => (double?)0).ToList())])
            : SvgCharts.Bars("chart-rejected", "Teacher samples rejected, by reason", names,
                reasons.Select(reason => new ChartSeries(reason, teacherRounds.Select(r => (double?)r.Record.RejectedByReason.GetValueOrDefault(reason)).ToList())).ToList());
    }

    private static string HardNegatives(RunReportModel model)
    {
        var body = new StringBuilder("<h2>Hard negatives shown to the teacher</h2>")
            .Append("<p class=\"muted\">Validation examples the student got wrong with high confidence after a round; the teacher saw them in the next round's prompt.</p>");
        var shownAny = false;
        var roundNumbers = model.Rounds.Select(r => r.Record.Round).ToHashSet();
        foreach (var view in model.Rounds)
        {
            if (view.Validation is not { } evaluation || !roundNumbers.Contains(view.Record.Round + 1)) continue;
            var hard = evaluation.Guidance.HardNegatives;
            if (!model.Manifest.Configuration.IncludeHardNegatives || hard.Count == 0) continue;
            shownAny = true;
            body.Append($"<h3>Round {view.Record.Round + 1} prompt <span class=\"muted\">(mined from round {view.Record.Round})</span></h3>")
                .Append($"<table class=\"hard-negatives\" data-round=\"{view.Record.Round + 1}\"><thead><tr><th>text</th><th>true label</th><th>student predicted</th><th>confidence</th></tr></thead><tbody>");
            foreach (var h in hard)
                body.Append($"<tr><td class=\"text\">{E(h.Text)}</td><td>{E(h.TrueLabel)}</td><td class=\"wrong\">{E(h.PredictedLabel)}</td><td>{P(h.Confidence)}</td></tr>");
            body.Append("</tbody></table>");
        }
        if (!shownAny) body.Append("<p class=\"muted\" id=\"no-hard-negatives\">None were shown to the teacher in this run.</p>");
        return body.ToString();
    }

    private static string PerClass(string id, ValidationReport report)
    {
        var body = new StringBuilder($"<table id=\"{id}\"><thead><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead><tbody>");
        foreach (var c in report.PerClass)
            body.Append($"<tr><td class=\"text\">{E(c.Label)}</td><td>{P(c.Precision)}</td><td>{P(c.Recall)}</td><td>{P(c.F1)}</td><td>{c.Support}</td></tr>");
        return body.Append($"<tr><td class=\"text\">all ({report.Count})</td><td colspan=\"2\">accuracy {P(report.Accuracy)}</td><td>{P(report.MacroF1)}</td><td>{report.Count}</td></tr>")
            .Append("</tbody></table>").ToString();
    }

    /// <summary>The most the run could cost, forecast before it started, beside what each teacher round cost.</summary>
    private static string ForecastTable(CostForecast f, RunManifest m)
    {
        // A teacher round whose generation is recorded (a round the run stopped before has forecast figures only).
        static bool Generated(RoundRecord r) => r.Round > 0 && (r.ShardBlob is not null || r.TeacherCalls > 0);
        static string Pair(long forecast, long? actual) =>
            $"<td>{forecast.ToString("N0", CultureInfo.InvariantCulture)}</td><td>{(actual is { } a ? a.ToString("N0", CultureInfo.InvariantCulture) : "–")}</td>";
        var body = new StringBuilder("<h2>Teacher cost: forecast and actual</h2>")
            .Append($"<p class=\"muted\">The most each round could cost, forecast before the run ({E(f.Model)}, tokenizer {E(f.Tokenizer)}), ")
            .Append("and what it cost. Failed calls that were retried are not billed; a malformed reply's repair call is, and is not in the forecast.</p>")
            .Append("<table id=\"forecast\"><thead><tr><th>round</th><th>calls (most)</th><th>calls</th><th>prompt tokens (most)</th><th>prompt tokens</th>")
            .Append("<th>completion tokens (most)</th><th>completion tokens</th><th>cost (most)</th><th>cost</th></tr></thead><tbody>");
        foreach (var r in f.Rounds)
        {
            var actual = m.Rounds.FirstOrDefault(x => x.Round == r.Round && Generated(x));
            body.Append($"<tr data-round=\"{r.Round}\"><td>{r.Round}</td>").Append(Pair(r.TeacherCalls, actual?.TeacherCalls))
                .Append(Pair(r.PromptTokens, actual?.TeacherPromptTokens)).Append(Pair(r.CompletionTokens, actual?.TeacherCompletionTokens))
                .Append($"<td>{Usd(r.CostUsd)}</td><td>{(actual is null ? "–" : Usd(actual.TeacherCostUsd))}</td></tr>");
        }
        var done = m.Rounds.Where(Generated).ToList();
        body.Append("<tr class=\"total\"><td>all</td>").Append(Pair(f.TeacherCalls, done.Sum(x => x.TeacherCalls)))
            .Append(Pair(f.PromptTokens, done.Sum(x => x.TeacherPromptTokens))).Append(Pair(f.CompletionTokens, done.Sum(x => x.TeacherCompletionTokens)))
            .Append($"<td>{Usd(f.CostUsd)}</td><td>{Usd(m.TeacherCostUsd)}</td></tr></tbody></table>");
        return body.ToString();
    }


    /// <summary>
    /// How the teacher answered, when there is something to say: the response mode (and API) that served, prompts and
    /// replies the content filter took, replies cut off at the output limit.
    /// </summary>
    internal static string? TeacherLine(RunManifest m)
    {
        var parts = new List<string>();
        var modes = m.Rounds.Where(r => r.ResponseMode is not null).Select(r => r.ResponseMode!).Distinct().ToList();
        if (modes.Count > 0) parts.Add($"teacher asked in {string.Join(", then ", modes)}");
        if (m.Rounds.Any(r => r.TeacherApi == "batch")) parts.Add("through the Batch API");
        if (m.PromptsFiltered + m.RepliesFiltered > 0)
            parts.Add($"content filter: {m.PromptsFiltered} prompts refused, {m.RepliesFiltered} replies withheld");
        if (m.TruncatedReplies > 0)
            parts.Add($"{m.TruncatedReplies} replies cut off at the output limit ({m.SamplesLostToTruncation} samples lost; " +
                      $"{m.Rounds.LastOrDefault(r => r.SamplesPerRequest is not null)?.SamplesPerRequest} samples per request now)");
        return parts.Count == 0 ? null : string.Join(" · ", parts);
    }

    private static string Card(string key, string value, string id) =>
        $"<div class=\"card\" id=\"{id}\"><div class=\"k\">{E(key)}</div><div class=\"v\">{E(value)}</div></div>";

    private static string Panel(string svg) => $"<div class=\"panel\">{svg}</div>";
    /// <summary>A round's per-class asks: "2–9 (floor 1, cap 16)", "(floor 1)" without a cap; random augmentation's even shares without bounds; "–" for round 0.</summary>
    private static string PerClass(RoundGuidance? guidance) =>
        guidance is null || guidance.Allocation.Count == 0 ? "–"
        : $"{guidance.Allocation.Min()}–{guidance.Allocation.Max()}" + (guidance.Bounds is { } b ? $" (floor {b.Floor}{(b.Cap is { } cap ? $", cap {cap}" : "")})" : "");

    private static string P(double? v) => v is { } d && double.IsFinite(d) ? (d * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "–";
    private static string N(double? v, string format) => v is { } d && double.IsFinite(d) ? d.ToString(format, CultureInfo.InvariantCulture) : "–";
    private static string Usd(decimal v) => "$" + v.ToString("0.0000", CultureInfo.InvariantCulture);
    private static string E(string s) => WebUtility.HtmlEncode(s);
}
