using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Pgkd.Cli;
using Spectre.Console;
using Xunit.Abstractions;

namespace PgkdAspire.FunctionalTests;

/// <summary>The pgkd CLI, in-process, against the real gateway of the distillation fixture and its finished run.</summary>
[Collection(DistillationCollection.Name)]
public sealed class CliFunctionalTests(DistillationRunFixture run, ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pgkd-cli-functional-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string GatewayUrl => run.Gateway.BaseAddress!.ToString();

    private IReadOnlyList<string> Labels => run.Run["labels"]!.AsArray().Select(l => (string)l!["name"]!).ToList();

    /// <summary>pgkd in-process; output as on a pipe (plain text), or as on a terminal with <paramref name="terminal"/>.</summary>
    private async Task<(int Exit, string Output, string Errors)> PgkdWithKey(string? apiKey, string[] args, bool terminal = false)
    {
        var outText = new StringWriter();
        var errText = new StringWriter();
        IAnsiConsole Console(TextWriter w, bool tty)
        {
            var c = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(w), Ansi = tty ? AnsiSupport.Yes : AnsiSupport.No,
                ColorSystem = tty ? ColorSystemSupport.Standard : ColorSystemSupport.NoColors,
                Interactive = tty ? InteractionSupport.Yes : InteractionSupport.No,
            });
            c.Profile.Width = 240;
            return c;
        }
        var env = new Dictionary<string, string> { ["PGKD_GATEWAY"] = GatewayUrl };
        if (apiKey is not null) env["PGKD_API_KEY"] = apiKey;
        // A watch that never ends fails the test (exit 130) instead of hanging it.
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var exit = await new PgkdCli(Console(outText, terminal), Console(errText, false), env.GetValueOrDefault).RunAsync(args, timeout.Token);
        log.WriteLine($"$ pgkd {string.Join(' ', args)}   (exit {exit})\n{outText}{errText}");
        return (exit, outText.ToString(), errText.ToString());
    }

    private Task<(int Exit, string Output, string Errors)> Pgkd(params string[] args) => PgkdWithKey(DistillationRunFixture.ApiKey, args);

    [Fact]
    public async Task Status_shows_every_round_the_best_one_and_the_test_score()
    {
        var (exit, output, errors) = await Pgkd("status", run.RunId.ToString());
        Assert.True(exit == 0, errors);
        Assert.Contains($"Run {run.RunId}", output);
        Assert.Contains("Completed", output);
        Assert.Contains("3/3 rounds evaluated", output);
        Assert.Contains($"{(int)run.Run["bestRound"]!} ★", output);
        Assert.Contains($"test accuracy {(double)run.Run["testReport"]!["accuracy"]! * 100:0.0}%", output);
        // --watch on a finished run prints it once and exits 0; on a terminal through the live view (ANSI cursor control).
        var watched = await Pgkd("status", run.RunId.ToString(), "--watch", "--interval", "1");
        Assert.Equal(0, watched.Exit);
        Assert.Contains("Completed", watched.Output);
        var live = await PgkdWithKey(DistillationRunFixture.ApiKey, ["status", run.RunId.ToString(), "--watch"], terminal: true);
        Assert.True(live.Exit == 0, live.Errors);
        Assert.Contains("\u001b[", live.Output);
        Assert.Contains("3/3 rounds evaluated", live.Output);
    }

    [Fact]
    public async Task Models_lists_the_runs_model_and_classify_labels_texts_with_it()
    {
        var models = await Pgkd("models");
        Assert.True(models.Exit == 0, models.Errors);
        Assert.Contains($"{run.RunId}/round-{(int)run.Run["bestRound"]!}", models.Output);

        var one = await Pgkd("classify", "My parcel is a week late", "--run", run.RunId.ToString());
        Assert.True(one.Exit == 0, one.Errors);
        Assert.Contains($"model {run.RunId}/round-", one.Output);
        Assert.Contains(Labels, label => one.Output.Contains($"│ {label} ", StringComparison.Ordinal));

        var file = Path.Combine(_dir, "texts.txt");
        await File.WriteAllLinesAsync(file, ["The lamp arrived with a cracked base", "", "Where is the refund for my coat?", "Please cancel my order before it ships"]);
        var many = await Pgkd("classify", "--file", file);
        Assert.True(many.Exit == 0, many.Errors);
        Assert.Equal(3, Regex.Matches(many.Output, @"│\s+\d+ │").Count);
    }

    [Fact]
    public async Task Export_writes_the_model_labels_and_tokenizer_files()
    {
        var outDir = Path.Combine(_dir, "export");
        var (exit, output, errors) = await Pgkd("export", run.RunId.ToString(), "--out", outDir);
        Assert.True(exit == 0, errors);
        Assert.Contains("Exported the best model", output);
        var onnx = await File.ReadAllBytesAsync(Path.Combine(outDir, "model.onnx"));
        Assert.True(onnx.Length > 1_000_000, $"model.onnx has {onnx.Length} bytes");
        Assert.Equal(0x08, onnx[0]); // protobuf field 1 (ir_version), varint: an ONNX ModelProto
        Assert.Equal(Labels, (await File.ReadAllLinesAsync(Path.Combine(outDir, "labels.txt"))).Where(l => l.Length > 0));
        Assert.Contains("[CLS]", await File.ReadAllLinesAsync(Path.Combine(outDir, "vocab.txt")));
        Assert.Contains("\"labels\"", await File.ReadAllTextAsync(Path.Combine(outDir, "metadata.json")));
        Assert.Empty(Directory.GetFiles(outDir, "*.part"));

        // The int8 variant instead of the fp32 graph, on request: smaller, and an ONNX model too.
        var int8Dir = Path.Combine(_dir, "export-int8");
        var int8 = await Pgkd("export", run.RunId.ToString(), "--out", int8Dir, "--precision", "int8");
        Assert.True(int8.Exit == 0, int8.Errors);
        var quantized = await File.ReadAllBytesAsync(Path.Combine(int8Dir, "model.int8.onnx"));
        Assert.Equal(0x08, quantized[0]);
        Assert.InRange(quantized.Length, onnx.Length / 5, onnx.Length * 4 / 5); // the embedding table stays fp32
        Assert.False(File.Exists(Path.Combine(int8Dir, "model.onnx")));
    }

    [Fact]
    public async Task A_wrong_key_is_exit_4_and_says_how_to_pass_the_right_one()
    {
        foreach (var args in new[] { new[] { "models" }, ["status", run.RunId.ToString()], ["export", run.RunId.ToString(), "--out", _dir] })
        {
            var (exit, _, errors) = await PgkdWithKey("not-the-key-of-this-gateway", args);
            Assert.Equal(ExitCodes.Unauthorized, exit);
            Assert.Contains("the gateway refused the API key: Wrong API key", errors);
            Assert.Contains("--api-key", errors);
        }
    }

    [Fact]
    public async Task Unknown_runs_are_exit_6()
    {
        var (exit, _, errors) = await Pgkd("status", Guid.NewGuid().ToString());
        Assert.Equal(ExitCodes.NotFound, exit);
        Assert.Contains("No such run", errors);
    }

    [Fact]
    public async Task Run_prints_the_gateways_validation_errors_or_the_new_run_id()
    {
        var labels = Path.Combine(_dir, "labels.txt");
        File.Copy(DemoRun.Data("labels.txt"), labels);
        var val = DemoRun.Data("seed_val.jsonl");
        // Valid lines, but one label has no training example: only the gateway checks that, so this is its answer.
        var firstLabel = Labels[0];
        var train = Path.Combine(_dir, "train.jsonl");
        await File.WriteAllLinesAsync(train, File.ReadAllLines(DemoRun.Data("seed_train.jsonl"))
            .Where(l => l.Trim().Length > 0 && !l.Contains($"\"label\": \"{firstLabel}\"") && !l.Contains($"\"label\":\"{firstLabel}\"")));
        var rejected = await Pgkd("run", "--train", train, "--val", val, "--labels", labels);
        Assert.Equal(ExitCodes.Rejected, rejected.Exit);
        Assert.Contains("the gateway rejected the request: The run was rejected", rejected.Errors);
        Assert.Contains($"train: label \"{firstLabel}\" has no examples", rejected.Errors);

        var started = await Pgkd("run", "--train", DemoRun.Data("seed_train.jsonl"), "--val", val, "--labels", labels,
            "--rounds", "1", "--samples-per-round", "8", "--mode", "head", "--epochs", "1");
        Assert.True(started.Exit == 0, started.Errors);
        var runId = Guid.Parse(Regex.Match(started.Output, @"Run started: ([0-9a-f-]{36})").Groups[1].Value);
        Assert.Contains($"pgkd status {runId} --watch", started.Output);
        Assert.Contains($"/runs/{runId}", started.Output);
        var manifest = await run.Gateway.GetFromJsonAsync<System.Text.Json.Nodes.JsonObject>($"/v1/runs/{runId}");
        Assert.Equal(1, (int)manifest!["configuration"]!["maxRounds"]!);
        Assert.Equal("head", (string?)manifest["student"]!["mode"]);
        // Cancel it (a second completed run would change the default model other tests classify with) and watch it
        // end: the watch follows the live run and exits 1 for a cancelled one.
        (await run.Gateway.PostAsync($"/v1/runs/{runId}/cancel", null)).EnsureSuccessStatusCode();
        var watched = await Pgkd("status", runId.ToString(), "--watch", "--interval", "1");
        Assert.Equal(ExitCodes.RunFailed, watched.Exit);
        Assert.Contains($"run {runId} ended Cancelled", watched.Errors);
        Assert.Contains("Cancelled", watched.Output);
    }
}
