using System.Globalization;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Pgkd.Cli;

/// <summary>
/// The <c>pgkd</c> commands. <see cref="RunAsync"/> is the whole program with its console, environment and HTTP
/// handler passed in, so tests run it in-process against a real gateway and read what it printed.
/// </summary>
public sealed class PgkdCli(IAnsiConsole output, IAnsiConsole errors, Func<string, string?> environment, HttpMessageHandler? handler = null)
{
    /// <summary>Texts per classify request: the gateway's batch limit.</summary>
    public const int ClassifyBatch = 64;

    public const string Usage = """
        pgkd: start and watch PGKD distillation runs, classify text, export the student.

        Commands:
          pgkd run --train F --val F --labels F [--test F] [--rounds N]
                   [--samples-per-round N] [--mode head|full] [--epochs N]
                   [--patience N] [--seed N] [--strategy pgkd|random] [--selection-share X]
                   [--task TEXT] [--pool F] [--batch] [--watch] [--dry-run]
              Reads JSONL ({"text","label"} a line) or CSV (text,label header)
              and labels.txt (one label a line, optionally name<TAB>description),
              checks them, starts the run and prints its id. --pool: labeled
              texts the local teacher emulator answers from for this run (your
              own data without an LLM). --batch: each round through the
              teacher's Batch API (about half the price). --dry-run: start
              nothing; print the most the run can cost (teacher calls, prompt
              and completion tokens, dollars; per round and in all), counted
              with the teacher model's tokenizer.
          pgkd status [RUN] [--watch] [--interval SECONDS]
              The run's rounds (the latest run without RUN); --watch follows it
              live until it finishes.
          pgkd classify TEXT... | --file F [--run RUN]
              Labels texts with the best model of the latest (or the given)
              completed run; --file: one text a line.
          pgkd models
              Models of completed runs; the default one serves when no run is chosen.
          pgkd export RUN --out DIR [--precision fp32|int8]
              Writes model.onnx, metadata.json, labels.txt and vocab.txt of the
              run's best model into DIR.
          pgkd teacher check [--teacher CONNECTION]
              One small request to the teacher (else $PGKD_TEACHER, else the
              AppHost's user secret ConnectionStrings:teacher): deployment and
              model, latency, tokens, price per call, response formats accepted.

        Options for every command:
          --gateway URL    gateway address (else $PGKD_GATEWAY, else http://localhost:5080)
          --api-key KEY    API key (else $PGKD_API_KEY, else the local dev key)
        """;

    public async Task<int> RunAsync(IReadOnlyList<string> args, CancellationToken cancellationToken = default)
    {
        try
        {
            var parsed = CliArguments.Parse(args);
            if (parsed.Command is null or "help" || (parsed.Has("help")))
            {
                PrintUsage();
                return parsed.Command is null && !parsed.Has("help") ? ExitCodes.Usage : ExitCodes.Ok;
            }
            return parsed.Command switch
            {
                "run" => await StartRunAsync(parsed, cancellationToken),
                "status" => await StatusAsync(parsed, cancellationToken),
                "classify" => await ClassifyAsync(parsed, cancellationToken),
                "models" => await ModelsAsync(parsed, cancellationToken),
                "export" => await ExportAsync(parsed, cancellationToken),
                "teacher" => await TeacherCommand.RunAsync(parsed, output, environment, cancellationToken),
                _ => throw new CliException(ExitCodes.Usage, $"unknown command \"{parsed.Command}\"; the commands are run, status, classify, models, export, teacher (pgkd --help)"),
            };
        }
        catch (CliException e)
        {
            errors.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            foreach (var detail in e.Details) errors.MarkupLine($"  [red]•[/] {Markup.Escape(detail)}");
            return e.ExitCode;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            errors.MarkupLine("[grey]interrupted[/]");
            return ExitCodes.Interrupted;
        }
    }

    private void PrintUsage()
    {
        output.WriteLine(Usage);
        output.WriteLine("Exit codes:");
        foreach (var (code, meaning) in ExitCodes.All) output.WriteLine($"  {code,3}  {meaning}");
    }

    private GatewayClient Gateway(CliArguments args) => GatewayClient.Create(GatewaySettings.Resolve(args, environment), handler);

    private async Task<int> StartRunAsync(CliArguments args, CancellationToken cancellationToken)
    {
        args.Allow("train", "val", "test", "labels", "rounds", "samples-per-round", "mode", "epochs", "patience", "seed", "strategy", "selection-share", "task", "pool", "watch", "interval", "batch", "dry-run");
        args.AtMostPositionals(0, "pgkd run --train F --val F --labels F [...]");
        var files = new RunRequestBuilder.Files(args.Required("train", "training data file"), args.Required("val", "validation data file"),
            args.Option("test"), args.Required("labels", "labels file, one label a line"), args.Option("pool"));

        var configuration = new JsonObject();
        if (args.IntOption("rounds", 1, 100) is { } rounds) configuration["maxRounds"] = rounds;
        if (args.IntOption("samples-per-round", 1, 10_000) is { } samples) configuration["samplesPerRound"] = samples;
        if (args.IntOption("patience", 1, 100) is { } patience) configuration["patience"] = patience;
        if (args.Has("batch")) configuration["batchApi"] = true; // each round through the teacher's Batch API (half price, slower)
        if (args.IntOption("seed", int.MinValue, int.MaxValue) is { } seed) configuration["seed"] = seed;
        if (args.Option("selection-share") is { } share)
            configuration["selectionShare"] = double.TryParse(share, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var x)
                && x >= 0 && x < 1 ? x : throw new CliException(ExitCodes.Usage, $"--selection-share must be a number from 0 to less than 1, was \"{share}\"");
        if (args.Option("strategy") is { } strategy)
            configuration["strategy"] = strategy.ToLowerInvariant() switch
            {
                "pgkd" => "Pgkd",
                "random" => "RandomAugmentation",
                _ => throw new CliException(ExitCodes.Usage, $"--strategy must be pgkd or random, was \"{strategy}\""),
            };
        var student = new JsonObject();
        if (args.Option("mode") is { } mode)
            student["mode"] = mode.ToLowerInvariant() is "head" or "full" ? mode.ToLowerInvariant()
                : throw new CliException(ExitCodes.Usage, $"--mode must be head or full, was \"{mode}\"");
        if (args.IntOption("epochs", 1, 200) is { } epochs) student["epochsPerRound"] = epochs;

        var request = RunRequestBuilder.Build(files, configuration, student, args.Option("task"));
        var gateway = Gateway(args);
        if (args.Has("dry-run"))
        {
            // The gateway forecasts: it knows the teacher the generator uses, its prices and its tokenizer.
            output.Write(ForecastView.Render(await gateway.PostJsonAsync("v1/runs?dryRun=true", request, cancellationToken)));
            return ExitCodes.Ok;
        }
        // One key per invocation: a retry after a network failure returns the run the first attempt made, never a second run.
        var accepted = await gateway.PostJsonIdempotentAsync("v1/runs", request, Guid.NewGuid().ToString(), cancellationToken);
        var runId = (string?)accepted["runId"] ?? throw new CliException(ExitCodes.GatewayError, "the gateway accepted the run but sent no runId");
        output.MarkupLine($"Run started: [bold]{Markup.Escape(runId)}[/]");
        output.MarkupLine($"[grey]watch it:[/] pgkd status {Markup.Escape(runId)} --watch");
        output.MarkupLine($"[grey]report:[/]   {Markup.Escape(new Uri(gateway.Settings.BaseAddress, $"runs/{runId}").ToString())}");
        return args.Has("watch") ? await WatchAsync(gateway, runId, Interval(args), cancellationToken) : ExitCodes.Ok;
    }

    private async Task<int> StatusAsync(CliArguments args, CancellationToken cancellationToken)
    {
        args.Allow("watch", "interval");
        args.AtMostPositionals(1, "pgkd status [RUN] [--watch]");
        var gateway = Gateway(args);
        var runId = args.Positionals.Count == 1 ? RunId(args.Positionals[0]) : await LatestRunAsync(gateway, cancellationToken);
        if (args.Has("watch")) return await WatchAsync(gateway, runId, Interval(args), cancellationToken);
        var run = await gateway.GetJsonAsync($"v1/runs/{runId}", cancellationToken);
        output.Write(StatusView.Render(run, output.Profile.Width));
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Polls the run until it finishes: a live-updating table on a terminal; on a pipe or log (no cursor control),
    /// the table again each time a round is scored or the status changes.
    /// </summary>
    private async Task<int> WatchAsync(GatewayClient gateway, string runId, TimeSpan interval, CancellationToken cancellationToken)
    {
        var run = await gateway.GetJsonAsync($"v1/runs/{runId}", cancellationToken);
        if (output.Profile.Capabilities.Interactive && output.Profile.Capabilities.Ansi)
        {
            await output.Live(StatusView.Render(run, output.Profile.Width)).AutoClear(false).StartAsync(async live =>
            {
                while (!StatusView.IsFinished(run))
                {
                    await Task.Delay(interval, cancellationToken);
                    run = await gateway.GetJsonAsync($"v1/runs/{runId}", cancellationToken);
                    live.UpdateTarget(StatusView.Render(run, output.Profile.Width));
                }
            });
        }
        else
        {
            var shown = "";
            while (true)
            {
                var state = $"{StatusView.Status(run)}/{StatusView.Progress(run).Done}/{run["bestRound"]}";
                if (state != shown)
                {
                    output.Write(StatusView.Render(run, output.Profile.Width));
                    output.WriteLine();
                    shown = state;
                }
                if (StatusView.IsFinished(run)) break;
                await Task.Delay(interval, cancellationToken);
                run = await gateway.GetJsonAsync($"v1/runs/{runId}", cancellationToken);
            }
        }
        var status = StatusView.Status(run);
        if (status == "Completed") return ExitCodes.Ok;
        errors.MarkupLine($"[red]run {Markup.Escape(runId)} ended {status}[/]: {Markup.Escape((string?)run["failureReason"] ?? (string?)run["stopReason"] ?? "no reason given")}");
        return ExitCodes.RunFailed;
    }

    private async Task<int> ClassifyAsync(CliArguments args, CancellationToken cancellationToken)
    {
        args.Allow("file", "run");
        var texts = new List<string>(args.Positionals);
        if (args.Option("file") is { } file)
        {
            if (texts.Count > 0) throw new CliException(ExitCodes.Usage, "give either TEXT arguments or --file, not both");
            try
            {
                texts.AddRange(File.ReadLines(file).Where(l => l.Trim().Length > 0));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CliException(ExitCodes.Usage, $"cannot read {file}: {(e is FileNotFoundException ? "no such file" : e.Message)}");
            }
            if (texts.Count == 0) throw new CliException(ExitCodes.Usage, $"{file} has no text (one text a line)");
        }
        if (texts.Count == 0) throw new CliException(ExitCodes.Usage, "nothing to classify: pgkd classify \"some text\" or pgkd classify --file texts.txt");
        var run = args.Option("run") is { } r ? RunId(r) : null;

        var gateway = Gateway(args);
        var table = new Table().Border(TableBorder.Rounded).AddColumns("#", "label", "confidence", "text");
        table.Columns[0].RightAligned();
        table.Columns[2].RightAligned();
        string? model = null;
        for (var start = 0; start < texts.Count; start += ClassifyBatch)
        {
            var batch = texts.Skip(start).Take(ClassifyBatch).ToList();
            var request = new JsonObject { ["texts"] = new JsonArray(batch.Select(t => (JsonNode)t).ToArray()) };
            if (run is not null) request["run"] = run;
            var answer = await gateway.PostJsonAsync("v1/classify", request, cancellationToken);
            model ??= (string?)answer["model"];
            var predictions = answer["predictions"]!.AsArray();
            for (var i = 0; i < predictions.Count; i++)
                table.AddRow((start + i + 1).ToString(CultureInfo.InvariantCulture), Markup.Escape((string?)predictions[i]!["label"] ?? "?"),
                    StatusView.Percent(predictions[i]!["confidence"]), Markup.Escape(Shorten(batch[i], 90)));
        }
        output.MarkupLine($"[grey]model {Markup.Escape(model ?? "?")}[/]");
        output.Write(table);
        return ExitCodes.Ok;
    }

    private async Task<int> ModelsAsync(CliArguments args, CancellationToken cancellationToken)
    {
        args.Allow();
        args.AtMostPositionals(0, "pgkd models");
        var models = (await Gateway(args).GetJsonAsync("v1/models", cancellationToken)).AsArray();
        if (models.Count == 0)
        {
            output.WriteLine("No models yet: a run has to complete first (pgkd run ...).");
            return ExitCodes.Ok;
        }
        var table = new Table().Border(TableBorder.Rounded).AddColumns("model", "default", "val. accuracy", "test accuracy", "labels", "completed (UTC)");
        foreach (var m in models.OfType<JsonNode>())
            table.AddRow(Markup.Escape((string?)m["id"] ?? "?"), (bool?)m["default"] == true ? "[green]✓[/]" : "",
                StatusView.Percent(m["validationAccuracy"]), StatusView.Percent(m["testAccuracy"]),
                Markup.Escape(string.Join(", ", m["labels"]?.AsArray().Select(l => (string?)l) ?? [])),
                Markup.Escape(((DateTimeOffset?)m["completedAt"])?.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) ?? ""));
        output.Write(table);
        return ExitCodes.Ok;
    }

    private async Task<int> ExportAsync(CliArguments args, CancellationToken cancellationToken)
    {
        args.Allow("out", "precision");
        args.AtMostPositionals(1, "pgkd export RUN --out DIR [--precision fp32|int8]");
        var modelFile = args.Option("precision")?.ToLowerInvariant() switch
        {
            null or "fp32" => "model.onnx",
            "int8" => "model.int8.onnx",
            var other => throw new CliException(ExitCodes.Usage, $"--precision must be fp32 or int8, was \"{other}\""),
        };
        if (args.Positionals.Count == 0) throw new CliException(ExitCodes.Usage, "which run? pgkd export RUN --out DIR");
        var runId = RunId(args.Positionals[0]);
        var outDir = Path.GetFullPath(args.Required("out", "folder to write the model files into"));
        var gateway = Gateway(args);
        // The manifest first: a clear "not completed" before creating any folder.
        var run = await gateway.GetJsonAsync($"v1/runs/{runId}", cancellationToken);
        if (StatusView.Status(run) != "Completed" || run["bestRound"] is null)
            throw new CliException(ExitCodes.NotFound, $"run {runId} is {StatusView.Status(run)}: its model can be exported once it has completed");
        try
        {
            Directory.CreateDirectory(outDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.Usage, $"cannot create {outDir}: {e.Message}");
        }
        var table = new Table().Border(TableBorder.Rounded).AddColumns("file", "bytes");
        table.Columns[1].RightAligned();
        foreach (var file in ModelFiles.Select(f => f == "model.onnx" ? modelFile : f))
        {
            var bytes = await gateway.DownloadAsync($"v1/runs/{runId}/model/{file}", Path.Combine(outDir, file), cancellationToken);
            table.AddRow(file, bytes.ToString("N0", CultureInfo.InvariantCulture));
        }
        output.MarkupLine($"Exported the best model of run [bold]{runId}[/] (round {run["bestRound"]}) to {Markup.Escape(outDir)}");
        output.Write(table);
        return ExitCodes.Ok;
    }

    /// <summary>What an export writes; the gateway's GET /v1/runs/{id}/model/{file} serves each.</summary>
    public static readonly IReadOnlyList<string> ModelFiles = ["model.onnx", "metadata.json", "labels.txt", "vocab.txt"];

    private static async Task<string> LatestRunAsync(GatewayClient gateway, CancellationToken cancellationToken)
    {
        var runs = (await gateway.GetJsonAsync("v1/runs", cancellationToken)).AsArray();
        return runs.Count > 0 && (string?)runs[0]!["runId"] is { } id ? id
            : throw new CliException(ExitCodes.NotFound, "no runs yet: start one with pgkd run");
    }

    private static string RunId(string text) => Guid.TryParse(text, out var id) ? id.ToString("D")
        : throw new CliException(ExitCodes.Usage, $"\"{text}\" is not a run id (a GUID such as 3f2b...; pgkd status lists the latest)");

    private static TimeSpan Interval(CliArguments args) => TimeSpan.FromSeconds(args.IntOption("interval", 1, 3600) ?? 2);

    private static string Shorten(string text, int max)
    {
        var oneLine = text.ReplaceLineEndings(" ");
        return oneLine.Length <= max ? oneLine : oneLine[..(max - 1)] + "…";
    }
}
