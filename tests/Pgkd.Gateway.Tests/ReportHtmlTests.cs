using System.Text.RegularExpressions;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;
using Pgkd.Gateway.Reports;
using Pgkd.Storage;

namespace Pgkd.Gateway.Tests;

public sealed class ReportHtmlTests
{
    private static readonly string[] Labels = ["World", "Sports", "Business <&>"];

    private static ValidationReport Report(double accuracy) => new(10, accuracy,
        Labels.Select(l => new ClassMetrics(l, accuracy, accuracy, accuracy, 3)).ToList(), accuracy, accuracy,
        [[3, 0, 1], [0, 3, 0], [1, 0, 2]], 0.5, 0.1);

    internal static RunReportModel Model(RunStatus status = RunStatus.Completed)
    {
        var runId = Guid.Parse("11111111-2222-3333-4444-555555555555");
        var rounds = new[]
        {
            new RoundRecord(0) { Accuracy = 0.6, MacroF1 = 0.55, ValidationLoss = 0.9 },
            new RoundRecord(1) { Requested = 16, Accepted = 12, RejectedByReason = new Dictionary<string, int> { ["duplicate"] = 3, ["leak"] = 1 },
                TeacherTokens = 4000, TeacherCostUsd = 0.0012m, Accuracy = 0.7, MacroF1 = 0.68, ValidationLoss = 0.7 },
            new RoundRecord(2) { Requested = 16, Accepted = 16, TeacherTokens = 4200, TeacherCostUsd = 0.0013m, Accuracy = 0.8, MacroF1 = 0.79, ValidationLoss = 0.6 },
        };
        var manifest = new RunManifest
        {
            RunId = runId, CreatedAt = DateTimeOffset.UnixEpoch, UpdatedAt = DateTimeOffset.UnixEpoch, Status = status,
            Labels = Labels.Select(l => new LabelDefinition(l)).ToList(), Configuration = RunConfiguration.Default with { MaxRounds = 2 },
            SeedTrain = new StoredDataset("t", 10, "h"), SeedValidation = new StoredDataset("v", 10, "h"),
            Rounds = rounds, BestRound = 2, StopReason = "StopMaxRounds", TestReport = status == RunStatus.Completed ? Report(0.75) : null,
        };
        RoundEvaluation Evaluation(int round, params HardNegative[] hard) =>
            new(round, "validation", "c", Report(rounds[round].Accuracy!.Value), new HardNegativeSelection(hard, [], []));
        return new RunReportModel(manifest,
        [
            new RoundView(rounds[0], null, Evaluation(0, new HardNegative("Stocks <b>fall</b>", "Business <&>", "World", 0.93))),
            new RoundView(rounds[1], [5, 4, 3], Evaluation(1, new HardNegative("Cup final tonight", "Sports", "World", 0.81))),
            new RoundView(rounds[2], [6, 5, 5], Evaluation(2)),
        ]);
    }

    private static int Count(string html, string pattern) => Regex.Matches(html, pattern).Count;

    [Fact]
    public void Run_report_draws_every_chart_with_the_runs_numbers()
    {
        var html = ReportHtml.RunReport(Model());
        Assert.Equal(6, Count(html, "class=\"point\" data-series=\"(accuracy|macro-F1)\""));   // 3 rounds × 2 metrics
        Assert.Equal(3, Count(html, "class=\"point\" data-series=\"validation loss\""));
        Assert.Equal(6, Count(html, "<rect class=\"bar\" data-series=\"(World|Sports|Business &lt;&amp;&gt;)\""));   // 2 teacher rounds × 3 labels
        Assert.Contains("data-series=\"Sports\" data-category=\"r2\" data-value=\"5\"", html);
        Assert.Contains("data-series=\"duplicate\" data-category=\"r1\" data-value=\"3\"", html);
        Assert.Contains("data-series=\"tokens\" data-category=\"r2\" data-value=\"4200\"", html);
        Assert.Equal(2 * 9, Count(html, "<rect class=\"cell\""));   // test and best-round validation matrices
        Assert.Contains("Confusion matrix, test set", html);
        Assert.Contains("id=\"test-accuracy\"><div class=\"k\">test accuracy</div><div class=\"v\">75.0%", html);
        Assert.Contains("id=\"best-round\"><div class=\"k\">best round</div><div class=\"v\">2<", html);
        Assert.Matches("<tr class=\"best\"[^>]*><td>2 ★", html);
        Assert.DoesNotContain("http-equiv=\"refresh\"", html); // finished: no reload
    }

    [Fact]
    public void Each_teacher_round_shows_its_per_class_range_floor_and_cap()
    {
        var model = Model();
        var views = model.Rounds.Select(v => v.Record.Round switch
        {
            1 => v with { Guidance = new RoundGuidance(1, [2, 9, 5], new TeacherPromptOptions(), false, "e", new AllocationBounds(2, 9)) },
            2 => v with { Guidance = new RoundGuidance(2, [6, 5, 5], new TeacherPromptOptions(), true, "e", new AllocationBounds(1, null)) },
            _ => v,
        }).ToList();
        var html = ReportHtml.RunReport(model with { Rounds = views });
        Assert.Contains("<td>2–9 (floor 2, cap 9)</td>", html);
        Assert.Contains("<td>5–6 (floor 1)</td>", html); // no cap
        Assert.Matches("<td>0 ?</td><td>[^<]*</td><td>–</td>", html); // round 0 asks the teacher nothing
    }

    [Fact]
    public void The_teachers_cached_tokens_and_behaviour_are_shown_when_there_is_something_to_say()
    {
        var plain = ReportHtml.RunReport(Model());
        Assert.Contains("id=\"teacher-cached\"><div class=\"k\">cached prompt tokens</div><div class=\"v\">0 (saved $0", plain);
        Assert.DoesNotContain("id=\"teacher-behaviour\"", plain);

        var model = Model();
        var rounds = model.Manifest.Rounds.Select(r => r.Round == 0 ? r : r with
        {
            ResponseMode = r.Round == 1 ? "json_schema" : "json_object", PromptsFiltered = 1, RepliesFiltered = r.Round, TruncatedReplies = 1,
            SamplesLostToTruncation = 7, SamplesPerRequest = 8, CachedPromptTokens = 2048, CachedSavingsUsd = 0.0002m, TeacherApi = "batch",
        }).ToList();
        var html = ReportHtml.RunReport(model with { Manifest = model.Manifest with { Rounds = rounds } });
        Assert.Contains("<div class=\"v\">4,096 (saved $0.0004", html);
        Assert.Contains("teacher asked in json_schema, then json_object · through the Batch API · content filter: 2 prompts refused, 3 replies withheld · " +
                        "2 replies cut off at the output limit (14 samples lost; 8 samples per request now)", System.Net.WebUtility.HtmlDecode(html));
    }

    [Fact]
    public void The_forecast_made_before_the_run_stands_beside_what_each_round_cost()
    {
        Assert.DoesNotContain("id=\"forecast\"", ReportHtml.RunReport(Model())); // runs from before forecasts

        var model = Model();
        var forecast = new Pgkd.Core.Teacher.CostForecast("gpt-4o-mini", "o200k_base", true, false, 16, 3000, 400, null,
            [new(1, 1, 3000, 6500, 0.0044m), new(2, 1, 3000, 6500, 0.0044m), new(3, 1, 3000, 6500, 0.0044m)], 2_000_000, 10m, null);
        var rounds = model.Manifest.Rounds.Select(r => r.Round == 0 ? r : r with
        {
            TeacherCalls = 1, TeacherPromptTokens = 1200 + r.Round, TeacherCompletionTokens = 1000 + r.Round,
        }).ToList();
        var html = ReportHtml.RunReport(model with { Manifest = model.Manifest with { Rounds = rounds, Forecast = forecast } });

        var table = Regex.Match(html, "<table id=\"forecast\">.*?</table>").Value;
        Assert.Contains("gpt-4o-mini, tokenizer o200k_base", html);
        Assert.Contains("<tr data-round=\"1\"><td>1</td><td>1</td><td>1</td><td>3,000</td><td>1,201</td><td>6,500</td><td>1,001</td><td>$0.0044</td><td>$0.0012</td></tr>", table);
        // Round 3 was forecast but never ran (the run stopped after round 2).
        Assert.Contains("<tr data-round=\"3\"><td>3</td><td>1</td><td>–</td><td>3,000</td><td>–</td>", table);
        Assert.Contains("<tr class=\"total\"><td>all</td><td>3</td><td>2</td><td>9,000</td><td>2,403</td><td>19,500</td><td>2,003</td><td>$0.0132</td>", table);
    }

    [Fact]
    public void Hard_negatives_are_listed_under_the_round_whose_prompt_showed_them_with_the_students_prediction()
    {
        var html = ReportHtml.RunReport(Model());
        Assert.Contains("data-round=\"1\"", html);
        Assert.Contains("data-round=\"2\"", html);
        Assert.DoesNotContain("data-round=\"3\"", html); // round 2's mining had no later prompt
        Assert.Contains("<td class=\"text\">Stocks &lt;b&gt;fall&lt;/b&gt;</td><td>Business &lt;&amp;&gt;</td><td class=\"wrong\">World</td><td>93.0%</td>", html);
    }

    [Fact]
    public void Nothing_from_the_data_reaches_the_page_unescaped_and_nothing_is_loaded_from_elsewhere()
    {
        var html = ReportHtml.RunReport(Model()) + ReportHtml.RunsList([Model().Manifest]);
        Assert.DoesNotContain("<b>fall", html);
        Assert.DoesNotContain("Business <&>", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", html);
    }

    [Fact]
    public void A_running_run_reloads_itself_and_falls_back_to_the_best_validation_matrix()
    {
        var html = ReportHtml.RunReport(Model(RunStatus.Running));
        Assert.Contains("http-equiv=\"refresh\"", html);
        Assert.Contains("Confusion matrix, validation, round 2", html);
        Assert.Equal(9, Count(html, "<rect class=\"cell\""));
    }

    [Fact]
    public void A_run_that_failed_before_any_round_still_renders_and_says_why()
    {
        var model = Model();
        var failed = new RunReportModel(model.Manifest with
        {
            Status = RunStatus.Failed, Rounds = [], BestRound = null, TestReport = null, FailureReason = "trainer <crashed>",
        }, []);
        var html = ReportHtml.RunReport(failed);
        Assert.Contains("Failed: trainer &lt;crashed&gt;", html);
        Assert.Equal(0, Count(html, "class=\"point\""));
        Assert.Equal(0, Count(html, "<rect class=\"cell\""));
        Assert.Contains("id=\"best-round\"><div class=\"k\">best round</div><div class=\"v\">–<", html);
    }

    [Fact]
    public void Runs_list_links_each_run_to_its_report()
    {
        var html = ReportHtml.RunsList([Model().Manifest]);
        Assert.Contains("<a href=\"/runs/11111111-2222-3333-4444-555555555555\">", html);
        Assert.Contains("75.0%", html);
        Assert.Contains("No runs yet", ReportHtml.RunsList([]));
    }

    [Theory]
    [InlineData("/runs/abc", "/runs/abc")]
    [InlineData("/", "/")]
    [InlineData("//evil.example/x", "/runs")]
    [InlineData("/\\evil.example", "/runs")]
    [InlineData("https://evil.example/", "/runs")]
    [InlineData("/redirect?to=https://evil.example", "/runs")]
    [InlineData(null, "/runs")]
    public void Sign_in_returns_only_to_a_path_on_this_site(string? returnUrl, string expected) =>
        Assert.Equal(expected, ReportEndpoints.SafeReturnUrl(returnUrl));

    [Fact]
    public void Accepted_samples_are_counted_per_label_from_the_shard()
    {
        var shard = "{\"text\":\"a\",\"label\":\"Sports\"}\n{\"text\":\"b\",\"label\":\"World\"}\n\n{\"text\":\"c\",\"label\":\"Sports\"}\n";
        Assert.Equal([1, 2, 0], RunReportModel.CountByLabel(shard, Labels));
    }

    [Fact]
    public void The_report_says_what_the_best_round_was_chosen_on_and_why_a_round_got_no_samples()
    {
        var model = Model();
        var html = ReportHtml.RunReport(model);
        // One validation set: chosen on its accuracy, with its size.
        Assert.Contains("id=\"chosen-on\">best round 2 chosen on accuracy of the whole validation set (10 texts): 80.0%</p>", html);
        Assert.DoesNotContain("teacher-shortfall", html);

        var split = model.Manifest with
        {
            FeedbackValidation = new StoredDataset("f", 15, "h"), SelectionValidation = new StoredDataset("s", 15, "h"),
            Rounds = model.Manifest.Rounds.Select(r => r.Round == 2 ? r with { SelectionAccuracy = 0.8667 } : r).ToList(),
        };
        var nothing = Pgkd.Core.Teacher.TeacherShortfall.Diagnose(16, 0, new Dictionary<string, int>());
        split = split.WithRound(split.Round(1) with { Accepted = 0, RejectedByReason = new Dictionary<string, int>(), TeacherShortfall = nothing });
        html = ReportHtml.RunReport(model with { Manifest = split });
        Assert.Contains("best round 2 chosen on accuracy of the selection part (15 texts): 86.7%; per-round accuracy and macro-F1 are the feedback part&#39;s (15 texts)", html);
        Assert.Matches("id=\"teacher-shortfall-1\">Round 1: the teacher answered but returned no samples for the 16 requested[^<]*<strong>Fix:</strong> [^<]*--pool FILE", html);
    }
}
