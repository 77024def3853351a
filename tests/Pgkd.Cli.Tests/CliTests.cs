using System.Text.Json.Nodes;

namespace Pgkd.Cli.Tests;

public sealed class CliArgumentsTests
{
    [Fact]
    public void Options_take_values_in_either_form_and_flags_take_none()
    {
        var args = CliArguments.Parse(["status", "abc", "--gateway=http://x:1", "--api-key", "k", "--watch"]);
        Assert.Equal("status", args.Command);
        Assert.Equal(["abc"], args.Positionals);
        Assert.Equal("http://x:1", args.Option("gateway"));
        Assert.Equal("k", args.Option("api-key"));
        Assert.True(args.Has("watch"));
    }

    [Theory]
    [InlineData("--rounds", "needs a value")]
    [InlineData("--watch=yes", "takes no value")]
    public void Malformed_options_are_named(string arg, string message) =>
        Assert.Contains(message, Assert.Throws<CliException>(() => CliArguments.Parse(["run", arg])).Message);

    [Fact]
    public void Settings_come_from_options_then_environment_then_local_defaults()
    {
        var env = new Dictionary<string, string> { ["PGKD_GATEWAY"] = "http://env:1", ["PGKD_API_KEY"] = "env-key" };
        Assert.Equal(new GatewaySettings(new Uri("http://opt:2/"), "opt-key"),
            GatewaySettings.Resolve(CliArguments.Parse(["models", "--gateway", "http://opt:2", "--api-key", "opt-key"]), env.GetValueOrDefault));
        Assert.Equal(new GatewaySettings(new Uri("http://env:1/"), "env-key"), GatewaySettings.Resolve(CliArguments.Parse(["models"]), env.GetValueOrDefault));
        Assert.Equal(new GatewaySettings(new Uri("http://localhost:5080/"), "pgkd-local-dev-key"), GatewaySettings.Resolve(CliArguments.Parse(["models"]), _ => null));
    }
}

public sealed class CliCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pgkd-cli-tests-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    private string[] ValidFiles() =>
    [
        "--train", Write("train.jsonl", "{\"text\":\"Stocks fell sharply today\",\"label\":\"Business\"}\n{\"text\":\"The team won the cup final\",\"label\":\"Sports\"}\n"),
        "--val", Write("val.csv", "text,label\n\"Markets rallied, again\",Business\nA late goal decided it,sports\n"),
        "--labels", Write("labels.txt", "Business\tmoney, markets\nSports\n"),
    ];

    [Fact]
    public async Task Help_lists_commands_and_exit_codes_and_no_command_is_a_usage_error()
    {
        var help = await CliRunner.RunAsync("--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var word in new[] { "pgkd run", "pgkd status", "pgkd classify", "pgkd models", "pgkd export", "PGKD_GATEWAY", "PGKD_API_KEY", "Exit codes" })
            Assert.Contains(word, help.Output);
        Assert.Contains("    3  the gateway cannot be reached", help.Output);
        Assert.Equal(ExitCodes.Usage, (await CliRunner.RunAsync()).ExitCode);
    }

    [Fact]
    public async Task Unknown_commands_and_options_are_usage_errors_that_name_them()
    {
        var command = await CliRunner.RunAsync("stauts");
        Assert.Equal(ExitCodes.Usage, command.ExitCode);
        Assert.Contains("unknown command \"stauts\"", command.Errors);
        var option = await CliRunner.RunAsync("run", "--round", "3");
        Assert.Equal(ExitCodes.Usage, option.ExitCode);
        Assert.Contains("does not know --round", option.Errors);
        Assert.Contains("--rounds", option.Errors);
        var id = await CliRunner.RunAsync("status", "not-a-guid", "--gateway", CliRunner.ClosedGateway());
        Assert.Equal(ExitCodes.Usage, id.ExitCode);
        Assert.Contains("\"not-a-guid\" is not a run id", id.Errors);
    }

    [Theory]
    [InlineData("models")]
    [InlineData("status", "3f2b6c1e-0000-4000-8000-000000000001")]
    [InlineData("classify", "some text")]
    [InlineData("export", "3f2b6c1e-0000-4000-8000-000000000001", "--out", "x")]
    public async Task An_unreachable_gateway_is_exit_3_with_the_url_and_the_fix(params string[] args)
    {
        var gateway = CliRunner.ClosedGateway();
        var result = await CliRunner.RunAsync(args.Concat(["--gateway", gateway]).ToArray());
        Assert.Equal(ExitCodes.Unreachable, result.ExitCode);
        Assert.Contains($"cannot reach the gateway at {gateway}/", result.Errors);
        Assert.Contains("connection refused", result.Errors);
        Assert.Contains("PGKD_GATEWAY", result.Errors);
    }

    [Fact]
    public async Task The_gateway_url_can_come_from_the_environment()
    {
        var gateway = CliRunner.ClosedGateway();
        var result = await CliRunner.RunAsync(new Dictionary<string, string> { ["PGKD_GATEWAY"] = gateway }, "models");
        Assert.Equal(ExitCodes.Unreachable, result.ExitCode);
        Assert.Contains(gateway, result.Errors);
        Assert.Equal(ExitCodes.Usage, (await CliRunner.RunAsync("models", "--gateway", "ftp://x")).ExitCode);
    }

    [Fact]
    public async Task Bad_data_files_are_rejected_locally_with_file_and_line_before_anything_is_sent()
    {
        var train = Write("train.jsonl", "{\"text\":\"Stocks fell sharply today\",\"label\":\"Business\"}\n{\"text\":\"A match\",\"label\":\"Weather\"}\n");
        var val = Write("val.csv", "text\nno label column\n");
        var labels = Write("labels.txt", "Business\nSports\n");
        // The gateway is unreachable: a 5 (not a 3) proves nothing was sent.
        var result = await CliRunner.RunAsync("run", "--train", train, "--val", val, "--labels", labels, "--gateway", CliRunner.ClosedGateway());
        Assert.Equal(ExitCodes.Rejected, result.ExitCode);
        Assert.Contains("nothing was sent", result.Errors);
        Assert.Contains($"{train} line 2:", result.Errors);
        Assert.Contains("Weather", result.Errors);
        Assert.Contains($"{val} line 1:", result.Errors);
    }

    [Fact]
    public async Task Missing_files_and_bad_settings_are_usage_errors()
    {
        var files = ValidFiles();
        var missing = await CliRunner.RunAsync(["run", .. files[..4], "--labels", Path.Combine(_dir, "nope.txt")]);
        Assert.Equal(ExitCodes.Usage, missing.ExitCode);
        Assert.Contains("nope.txt: no such file", missing.Errors);
        Assert.Contains("missing --val", (await CliRunner.RunAsync(["run", .. files[..2], .. files[4..]])).Errors);
        Assert.Contains("--mode must be head or full", (await CliRunner.RunAsync(["run", .. files, "--mode", "half"])).Errors);
        Assert.Contains("--rounds must be between 1 and 100, was 0", (await CliRunner.RunAsync(["run", .. files, "--rounds", "0"])).Errors);
        Assert.Contains("--selection-share must be a number from 0 to less than 1, was \"1.5\"", (await CliRunner.RunAsync(["run", .. files, "--selection-share", "1.5"])).Errors);
    }

    [Fact]
    public async Task Valid_files_get_as_far_as_the_gateway()
    {
        var result = await CliRunner.RunAsync(["run", .. ValidFiles(), "--rounds", "2", "--gateway", CliRunner.ClosedGateway()]);
        Assert.Equal(ExitCodes.Unreachable, result.ExitCode);
    }

    [Fact]
    public void The_run_request_carries_labels_data_and_settings_in_the_gateways_shape()
    {
        var files = ValidFiles();
        var request = RunRequestBuilder.Build(new RunRequestBuilder.Files(files[1], files[3], null, files[5]),
            new JsonObject { ["maxRounds"] = 2 }, new JsonObject { ["mode"] = "head" }, "Sort news");
        Assert.Equal("""[{"name":"Business","description":"money, markets"},{"name":"Sports"}]""", request["labels"]!.ToJsonString());
        Assert.Equal(2, request["train"]!.AsArray().Count);
        // CSV quoting honoured; labels resolved case-insensitively to their canonical name.
        Assert.Equal("""{"text":"Markets rallied, again","label":"Business"}""", request["validation"]![0]!.ToJsonString());
        Assert.Equal("Sports", (string?)request["validation"]![1]!["label"]);
        Assert.Null(request["test"]);
        Assert.Equal(2, (int)request["configuration"]!["maxRounds"]!);
        Assert.Equal("Sort news", (string?)request["task"]);
    }

    [Fact]
    public void Status_view_shows_every_round_the_best_one_and_progress()
    {
        var run = JsonNode.Parse("""
            {"runId":"r-1","status":"Running","configuration":{"maxRounds":3},"bestRound":1,
             "rounds":[{"round":0,"requested":0,"accepted":0,"teacherTokens":0,"teacherCostUsd":0,"accuracy":0.61,"macroF1":0.6,"validationLoss":0.9},
                       {"round":1,"requested":16,"accepted":14,"rejectedByReason":{"duplicate":2},"teacherTokens":4100,"teacherCostUsd":0.0012,"accuracy":0.72,"macroF1":0.7,"validationLoss":0.7,
                        "teacherRetriesByCause":{"429":2,"timeout":1},"repairedReplies":1,"unusableReplies":0},
                       {"round":2,"requested":16,"accepted":0,"teacherTokens":0,"teacherCostUsd":0}]}
            """)!;
        Assert.Equal((2, 4), StatusView.Progress(run));
        Assert.False(StatusView.IsFinished(run));
        var text = new StringWriter();
        var plain = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(text), Ansi = Spectre.Console.AnsiSupport.No, ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
        });
        plain.Profile.Width = 200;
        plain.Write(StatusView.Render(run));
        var output = text.ToString();
        Assert.Contains("2/4 rounds evaluated", output);
        Assert.Contains("1 ★", output);
        Assert.Contains("72.0%", output);
        Assert.Contains("4,100", output);
        Assert.Contains("teacher 4,100 tokens, $0.0012", output);
        Assert.Contains("teacher retries 429 ×2, timeout ×1 · malformed replies: 1 repaired, 0 unusable · rejected duplicate 2", output);
        Assert.Equal("[green]" + new string('━', 5) + "[/][grey]" + new string('━', 5) + "[/]", StatusView.Bar(1, 2, 10));
    }

    private static string RenderAt(JsonNode run, int width)
    {
        var text = new StringWriter();
        var plain = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Out = new Spectre.Console.AnsiConsoleOutput(text), Ansi = Spectre.Console.AnsiSupport.No, ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
        });
        plain.Profile.Width = width;
        plain.Write(StatusView.Render(run, width));
        return text.ToString();
    }

    // The run of issue 21: 5 labels, a split validation set, a teacher that gave nothing.
    private static JsonNode IssueRun() => JsonNode.Parse("""
        {"runId":"0c5bd9a4-3d55-4a55-9a55-3c1b2f0e7d21","status":"Completed","configuration":{"maxRounds":2,"stoppingMetric":"Accuracy"},"bestRound":1,
         "seedValidation":{"count":30},"feedbackValidation":{"count":15},"selectionValidation":{"count":15},
         "bestRoundChosenOn":"best round 1 chosen on accuracy of the selection part (15 texts): 86.7%; per-round accuracy and macro-F1 are the feedback part's (15 texts)",
         "rounds":[{"round":0,"requested":0,"accepted":0,"teacherTokens":0,"teacherCostUsd":0,"accuracy":0.6667,"macroF1":0.61,"validationLoss":1.2345,"selectionAccuracy":0.8},
                   {"round":1,"requested":16,"accepted":0,"teacherTokens":12345,"teacherCostUsd":0.0123,"accuracy":0.6667,"macroF1":0.61,"validationLoss":1.2301,"selectionAccuracy":0.8667,
                    "teacherShortfall":{"kind":"NoSamples","cause":"the teacher answered but returned no samples for the 16 requested: it has nothing for this run's labels","fix":"give it a pool (pgkd run --pool FILE)"}},
                   {"round":2,"requested":16,"accepted":0,"teacherTokens":12345,"teacherCostUsd":0.0123,"accuracy":0.6667,"macroF1":0.61,"validationLoss":1.2299,"selectionAccuracy":0.8667}]}
        """)!;

    [Theory]
    [InlineData(80)]
    [InlineData(60)]
    public void Status_fits_a_narrow_terminal_with_whole_headers_dropping_columns_in_the_stated_order(int width)
    {
        var output = RenderAt(IssueRun(), width);
        var lines = output.Split('\n');
        var header = lines.First(l => l.StartsWith('│'));
        Assert.DoesNotContain("…", output);
        Assert.All(lines.Where(l => l.StartsWith('╭') || l.StartsWith('│') || l.StartsWith('╰')), l => Assert.True(l.TrimEnd().Length <= width, $"{l.TrimEnd().Length} > {width}: {l}"));
        // Whatever is shown is shown whole; what is left out goes in DropOrder's order.
        var shown = header.Split('│', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        string[] all = ["round", "requested", "accepted", "rejected", "tokens", "cost (USD)", "val. loss", "accuracy", "macro-F1", "selection"];
        Assert.All(shown, h => Assert.Contains(h, all));
        var dropped = all.Except(shown).ToList();
        Assert.Equal(StatusView.DropOrder.Take(dropped.Count), dropped.OrderBy(d => StatusView.DropOrder.ToList().IndexOf(d)));
        Assert.Contains("accuracy", shown);
        Assert.Contains("selection", shown);
        if (width == 80) Assert.Equal(["requested", "tokens", "cost (USD)"], dropped); // in the header's order
    }

    [Fact]
    public void Status_at_full_width_keeps_every_column_and_says_what_the_best_round_was_chosen_on_and_why_a_round_got_nothing()
    {
        var output = RenderAt(IssueRun(), 200);
        foreach (var h in new[] { "requested", "tokens", "cost (USD)", "val. loss", "selection" }) Assert.Contains(h, output);
        Assert.Contains("86.7%", output);   // the selection accuracy the best round was chosen on, in its row
        Assert.Contains("best round 1 chosen on accuracy of the selection part (15 texts): 86.7%", output);
        Assert.Contains("round 1: the teacher answered but returned no samples for the 16 requested", output);
        Assert.Contains("Fix: give it a pool (pgkd run --pool FILE)", output);
    }

    [Fact]
    public async Task A_pool_file_is_read_like_the_other_data_and_travels_in_the_request()
    {
        var files = ValidFiles();
        var pool = Write("pool.jsonl", "{\"text\":\"Bonds slipped on Friday\",\"label\":\"business\"}\n");
        var request = RunRequestBuilder.Build(new RunRequestBuilder.Files(files[1], files[3], null, files[5], pool), new JsonObject(), new JsonObject(), null);
        Assert.Equal("""[{"text":"Bonds slipped on Friday","label":"Business"}]""", request["pool"]!.ToJsonString());

        var bad = Write("bad-pool.jsonl", "{\"text\":\"Bonds slipped\",\"label\":\"Business\"}\n{\"text\":\"Rain all week\",\"label\":\"Weather\"}\n");
        var result = await CliRunner.RunAsync(["run", .. files, "--pool", bad, "--gateway", CliRunner.ClosedGateway()]);
        Assert.Equal(ExitCodes.Rejected, result.ExitCode);
        Assert.Contains($"{bad} line 2:", result.Errors);
    }
}
