using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Student;
using Pgkd.Student.Serving;
using static Pgkd.Benchmarks.Live.MachineInfo;

namespace Pgkd.Benchmarks.Serving;

/// <summary>One way of serving: through the gateway's <see cref="InferenceEngine"/> with these ONNX Runtime memory settings, or the old way (no engine).</summary>
public sealed record ServingConfiguration(string Name, bool Engine, bool MemoryArena, bool MemoryPattern, bool ShrinkArenaAfterRun)
{
    public OnnxRunOptions RunOptions(int threads) => new()
    {
        Threads = threads,
        MemoryArena = MemoryArena,
        MemoryPattern = MemoryPattern,
        ShrinkArenaAfterRun = ShrinkArenaAfterRun,
    };
}

/// <summary>What one child measured.</summary>
public sealed record ServingMemoryResult(
    string Configuration, string Provider, double RssWarmupMiB, double RssEndMiB, double PeakMiB, double MeasuredSeconds,
    long Requests, long Texts, long TextsRun, long TokensRun, long Shed, long Errors, double P50Ms, double P99Ms, double CpuSeconds, bool StoppedAtCap)
{
    public double TextsPerSecond => Texts / MeasuredSeconds;
    /// <summary>The model's throughput: texts run per second, answered or not (a request shed at its deadline may have had some run).</summary>
    public double TextsRunPerSecond => TextsRun / MeasuredSeconds;
    /// <summary>Padded tokens run per second (the engine's runs only): the model's work rate, whatever the mix of lengths in its batches.</summary>
    public double TokensRunPerSecond => TokensRun / MeasuredSeconds;
    public double Growth => RssEndMiB / RssWarmupMiB;
    /// <summary>The child's CPU time over the measured window per second: how much of the shared machine it got.</summary>
    public double CoresUsed => CpuSeconds / MeasuredSeconds;
}

/// <summary>
/// Issue 18 point 3: the gateway's resident memory under 32 concurrent clients with mixed text lengths and batch sizes,
/// per ONNX Runtime memory setting (<see cref="OnnxRunOptions"/>), and without the engine (one ONNX Runtime run per
/// request, all at once: what grew to 6.7 GB). Each configuration runs in its own child process, so no RSS carries over,
/// and configurations take turns so a load spike from elsewhere on the machine hits them alike.
/// </summary>
public static class ServingMemoryBenchmark
{
    /// <summary>The hidden first argument that makes this executable a child (see Program.cs).</summary>
    public const string ChildArgument = "--serving-memory-child";

    private const string ResultPrefix = "SERVING-MEMORY-RESULT ";
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private const int Producers = 32, WarmupSeconds = 10, Seed = 18;
    private static readonly TimeSpan ShedBackoff = TimeSpan.FromSeconds(1);

    /// <summary>A child past this RSS stops early: the machine is shared, and the old behaviour's growth is shown by then.</summary>
    private const double RssCapMiB = 6144;

    public static readonly ServingConfiguration[] Configurations =
    [
        new("no engine: one run per request, all concurrent (ORT defaults)", Engine: false, MemoryArena: true, MemoryPattern: true, ShrinkArenaAfterRun: false),
        new("engine, ORT defaults (arena, pattern)", true, true, true, false),
        new("engine, pattern off", true, true, false, false),
        new("engine, arena off", true, false, true, false),
        new("engine, arena + shrink after run", true, true, true, true),
        new("engine, arena off + pattern off", true, false, false, false),
    ];

    public static async Task<string> RunAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var loadAtStart = LoadAverage();
        var work = Directory.CreateTempSubdirectory("pgkd-bench-serving-memory-").FullName;
        try
        {
            var checkpoint = TrainStudent(options, work, cancellationToken);
            var results = new List<(int Repetition, ServingMemoryResult Result)>();
            for (var repetition = 1; repetition <= options.ServingRepeats; repetition++)
                foreach (var configuration in Configurations)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    Console.Error.WriteLine($"[bench] serving-memory: repetition {repetition}/{options.ServingRepeats}, {configuration.Name}");
                    var result = await RunChildAsync(new ChildSpec(configuration, checkpoint.Directory, options.DataDirectory, options.Threads, options.ServingSeconds), cancellationToken);
                    Console.Error.WriteLine($"[bench] serving-memory:   RSS {result.RssWarmupMiB:F0} -> {result.RssEndMiB:F0} MiB (peak {result.PeakMiB:F0}), {result.TextsPerSecond:F1} texts/s answered ({result.TextsRunPerSecond:F1} run, {result.TokensRunPerSecond:F0} padded tokens/s) on {result.CoresUsed:F2} cores, p50 {result.P50Ms:F0} ms, p99 {result.P99Ms:F0} ms, shed {result.Shed}, failed {result.Errors}");
                    results.Add((repetition, result));
                }
            return Render(options, checkpoint, loadAtStart, results);
        }
        finally
        {
            try { Directory.Delete(work, true); } catch (IOException) { /* a temp folder left behind */ }
        }
    }

    /// <summary>A head-mode student at the gateway's 128-token cap: serving memory depends on the encoder and the shapes, not on how well the head learned.</summary>
    private static StudentCheckpoint TrainStudent(BenchmarkOptions options, string work, CancellationToken cancellationToken)
    {
        Console.Error.WriteLine("[bench] serving-memory: training a head-mode student (max length 128)");
        TorchDevice.SetThreads(options.Threads);
        var labels = new LabelSet(File.ReadAllLines(Path.Combine(options.DataDirectory, "labels.txt"))
            .Where(l => l.Trim().Length > 0).Select(l => l.Split('\t')[0].Trim()).ToArray());
        var examples = File.ReadLines(Path.Combine(options.DataDirectory, "seed_train.jsonl")).Take(200).Select(l =>
        {
            var root = JsonDocument.Parse(l).RootElement;
            return new LabeledExample(root.GetProperty("text").GetString()!, root.GetProperty("label").GetString()!);
        }).ToArray();
        using var trainer = new StudentTrainer();
        var checkpoint = trainer.Train(new StudentTrainingOptions
        {
            Mode = StudentTrainingMode.Head, Epochs = 10, BatchSize = 16, LearningRate = 1e-2, MaxLength = 128, Threads = options.Threads, Seed = 5, Device = "cpu",
        }, examples, labels, Path.Combine(work, "student"), cancellationToken: cancellationToken);
        // Head-only: the children load model.onnx as a file, as the gateway serves it, so write the composed graphs once here.
        checkpoint.WriteServingGraphs();
        return checkpoint;
    }

    private sealed record ChildSpec(ServingConfiguration Configuration, string CheckpointDirectory, string DataDirectory, int Threads, int Seconds);

    private static async Task<ServingMemoryResult> RunChildAsync(ChildSpec spec, CancellationToken cancellationToken)
    {
        // This executable again (the apphost, or dotnet + this dll), with the spec as its one hidden argument.
        var self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
        start.ArgumentList.Add(ChildArgument);
        start.ArgumentList.Add(JsonSerializer.Serialize(spec, Json));
        // The gateway is an ASP.NET Core app: server GC. A console app's workstation GC would understate its managed heap.
        start.Environment["DOTNET_gcServer"] = "1";
        using var process = Process.Start(start)!;
        using var kill = cancellationToken.Register(() => { try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { } });
        var stdout = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        // The child ends itself with SIGKILL once it has reported (see ChildAsync): its exit code says nothing, its result line does.
        var line = stdout.Split('\n').LastOrDefault(l => l.StartsWith(ResultPrefix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"the serving-memory child for \"{spec.Configuration.Name}\" exited with {process.ExitCode} and no result");
        return JsonSerializer.Deserialize<ServingMemoryResult>(line[ResultPrefix.Length..], Json)!;
    }

    /// <summary>The child: load the student, serve the mix for warm-up + measured seconds, print one result line.</summary>
    public static async Task<int> ChildAsync(string specJson)
    {
        var spec = JsonSerializer.Deserialize<ChildSpec>(specJson, Json)!;
        var configuration = spec.Configuration;
        var inference = new InferenceOptions(); // the gateway's defaults
        var student = OnnxStudent.Load(spec.CheckpointDirectory, configuration.RunOptions(spec.Threads > 0 ? spec.Threads : inference.EffectiveThreads));
        var provider = student.ExecutionProvider;
        using var engine = configuration.Engine ? new InferenceEngine(student, inference, "bench") : null;
        Func<string[], CancellationToken, Task> classify = engine is not null
            ? (texts, ct) => engine.ClassifyAsync(texts, ct)
            : (texts, _) => Task.Run(() => student.PredictProbabilities(texts)); // the old gateway: each request its own run
        var load = new ServingLoad(spec.DataDirectory);
        // Under sustained load the gateway's thread pool grows to its concurrent requests; start there, so the old way
        // really runs 32 calls at once from the first second instead of ramping up one injected thread at a time.
        ThreadPool.GetMinThreads(out _, out var io);
        ThreadPool.SetMinThreads(Producers + Environment.ProcessorCount, io);

        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        var measureFrom = TimeSpan.FromSeconds(WarmupSeconds);
        var latencies = new List<double>[Producers];
        long texts = 0, requests = 0, shed = 0, errors = 0, textsRun = 0, tokensRun = 0;
        // The engine's own batch metrics count the texts and padded tokens it runs; the old way runs every text it is asked.
        using var batches = new MeterListener
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument is { Meter.Name: ServingMetrics.MeterName, Name: "pgkd.serving.batch.size" or "pgkd.serving.batch.padded_tokens" })
                    listener.EnableMeasurementEvents(instrument);
            },
        };
        batches.SetMeasurementEventCallback<int>((instrument, value, _, _) =>
        {
            if (clock.Elapsed >= measureFrom && !stop.IsCancellationRequested)
                Interlocked.Add(ref instrument.Name == "pgkd.serving.batch.size" ? ref textsRun : ref tokensRun, value);
        });
        batches.Start();
        // Fire and forget: the child ends itself once it has reported.
        _ = Enumerable.Range(0, Producers).Select(p => Task.Run(async () =>
        {
            var random = ServingLoad.ProducerRandom(Seed, p);
            var mine = latencies[p] = [];
            while (!stop.IsCancellationRequested)
            {
                var request = load.NextRequest(random);
                var started = clock.Elapsed;
                try
                {
                    await classify(request, stop.Token);
                }
                catch (Exception e) when (e is InferenceQueueFullException or InferenceDeadlineException)
                {
                    // The gateway answers 503 + Retry-After (1-30 s); the client comes back after the shortest, 1 s, so the load stays on.
                    if (clock.Elapsed >= measureFrom && !stop.IsCancellationRequested) Interlocked.Increment(ref shed);
                    try { await Task.Delay(ShedBackoff, stop.Token); } catch (OperationCanceledException) { }
                    continue;
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested) { break; }
                catch (Exception e)
                {
                    // A failed request is counted and shown, never silently ends its producer.
                    if (clock.Elapsed >= measureFrom && !stop.IsCancellationRequested && Interlocked.Increment(ref errors) <= 3) Console.Error.WriteLine($"[serving-memory child] request of {request.Length} texts failed: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                    continue;
                }
                // Counted when answered within the measured window, whenever it was asked.
                var answered = clock.Elapsed;
                if (answered < measureFrom || stop.IsCancellationRequested) continue;
                lock (mine) mine.Add((answered - started).TotalMilliseconds);
                Interlocked.Increment(ref requests);
                Interlocked.Add(ref texts, request.Length);
                if (engine is null) Interlocked.Add(ref textsRun, request.Length);
            }
        })).ToArray();

        var end = measureFrom + TimeSpan.FromSeconds(spec.Seconds);
        double warmupRss = double.NaN, warmupCpu = 0, endRss;
        var stoppedAtCap = false;
        while (true)
        {
            await Task.Delay(250);
            var rss = Status("VmRSS");
            if (double.IsNaN(warmupRss) && clock.Elapsed >= measureFrom) (warmupRss, warmupCpu) = (rss, CpuSeconds());
            if (clock.Elapsed >= end) { endRss = rss; break; }
            if (rss > RssCapMiB) { endRss = rss; stoppedAtCap = true; break; }
        }
        stop.Cancel();
        var measured = double.IsNaN(warmupRss) ? double.NaN : (clock.Elapsed - measureFrom).TotalSeconds; // NaN: capped during warm-up
        var cpu = CpuSeconds() - warmupCpu;
        var all = latencies.Where(l => l is not null).SelectMany(l => { lock (l) return l.ToArray(); }).Order().ToArray();
        var result = new ServingMemoryResult(configuration.Name, provider, warmupRss, endRss, Status("VmHWM"), measured,
            Interlocked.Read(ref requests), Interlocked.Read(ref texts), Interlocked.Read(ref textsRun), Interlocked.Read(ref tokensRun), Interlocked.Read(ref shed), Interlocked.Read(ref errors),
            Percentile(all, 0.50), Percentile(all, 0.99), cpu, stoppedAtCap);
        Console.Out.WriteLine(ResultPrefix + JsonSerializer.Serialize(result, Json));
        Console.Out.Flush();
        // The old way's runs cannot be cancelled, and a normal exit tears ONNX Runtime down under them (each then fails
        // with "GetElementType is not implemented"); the result is out, so end without teardown.
        Process.GetCurrentProcess().Kill();
        return 0;
    }

    private static double CpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    /// <summary>A /proc/self/status line in MiB (VmRSS: resident now; VmHWM: the peak).</summary>
    private static double Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return double.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024;
        return double.NaN;
    }

    private static double Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];

    /// <summary>
    /// The choice rule: among the engine's configurations whose RSS stays flat (end / warm-up at most
    /// <see cref="FlatGrowth"/> in every repetition) and which keep at least <see cref="MinThroughput"/> of the defaults'
    /// mean padded tokens run per second (the model's work rate: answered texts/s also depend on which requests the deadline
    /// sheds), the lowest mean end RSS.
    /// </summary>
    public const double FlatGrowth = 1.10, MinThroughput = 0.95;

    private static string Render(BenchmarkOptions options, StudentCheckpoint checkpoint, string loadAtStart, List<(int Repetition, ServingMemoryResult Result)> results)
    {
        var inference = new InferenceOptions();
        var text = new StringBuilder();
        text.AppendLine("## Serving memory");
        text.AppendLine();
        text.AppendLine(Line(loadAtStart));
        text.AppendLine($"Options: a head-mode student ({checkpoint.Metadata.Labels.Count} labels, max {checkpoint.Metadata.MaxLength} tokens, the full MiniLM graph in model.onnx) on ONNX Runtime " +
                        $"{results.FirstOrDefault().Result?.Provider ?? "?"}, {(options.Threads > 0 ? options.Threads : inference.EffectiveThreads)} intra-op threads; the engine with the gateway's default `{InferenceOptions.Section}` " +
                        $"(queue {inference.QueueCapacity} texts, batches of at most {inference.MaxBatchTexts} texts and {inference.MaxBatchTokens} padded tokens, wait {inference.MaxBatchWait.TotalMilliseconds:0} ms, " +
                        $"{inference.ConcurrentBatches} runner, deadline {inference.Deadline.TotalSeconds:0} s); {Producers} producers in a closed loop for {WarmupSeconds} s warm-up + {options.ServingSeconds} s measured, " +
                        "each child process fresh and on server GC as the gateway; a shed request (queue full or deadline: the gateway's 503) comes back after 1 s, the shortest Retry-After the gateway gives.");
        text.AppendLine();
        text.Append(Table(["configuration", "rep", "RSS after warm-up MiB", "RSS at end MiB", "end / warm-up", "peak (VmHWM) MiB", "texts answered/s", "texts run/s", "padded tokens run/s", "cores used", "p50 ms", "p99 ms", "shed", "failed"],
            results.OrderBy(r => Array.FindIndex(Configurations, c => c.Name == r.Result.Configuration)).ThenBy(r => r.Repetition).Select(r => (IReadOnlyList<string>)
            [
                r.Result.Configuration, $"{r.Repetition}", F(r.Result.RssWarmupMiB, "F0"), F(r.Result.RssEndMiB, "F0") + (r.Result.StoppedAtCap ? $" (cap, at {r.Result.MeasuredSeconds:F0} s)" : ""),
                F(r.Result.Growth, "F2"), F(r.Result.PeakMiB, "F0"), F(r.Result.TextsPerSecond, "F1"), F(r.Result.TextsRunPerSecond, "F1"), r.Result.TokensRun > 0 ? F(r.Result.TokensRunPerSecond, "F0") : "", F(r.Result.CoresUsed, "F2"), F(r.Result.P50Ms, "F0"), F(r.Result.P99Ms, "F0"), $"{r.Result.Shed}", $"{r.Result.Errors}",
            ])));
        text.AppendLine();

        var byConfiguration = Configurations.Select(c => (Configuration: c, Runs: results.Where(r => r.Result.Configuration == c.Name).Select(r => r.Result).ToArray()))
            .Where(c => c.Runs.Length > 0).ToArray();
        var baseline = byConfiguration.First(c => !c.Configuration.Engine);
        var defaults = byConfiguration.First(c => c.Configuration is { Engine: true, MemoryArena: true, MemoryPattern: true, ShrinkArenaAfterRun: false });
        var defaultRate = defaults.Runs.Average(r => r.TokensRunPerSecond);
        var engines = byConfiguration.Where(c => c.Configuration.Engine).ToArray();
        var flat = engines.Where(c => c.Runs.All(r => r.Growth <= FlatGrowth && !r.StoppedAtCap) && c.Runs.Average(r => r.TokensRunPerSecond) >= MinThroughput * defaultRate).ToArray();
        var chosen = (flat.Length > 0 ? flat : engines).MinBy(c => c.Runs.Average(r => r.RssEndMiB));
        string Mean(ServingMemoryResult[] runs) => $"{F(runs.Average(r => r.RssEndMiB), "F0")} MiB at the end ({F(runs.Max(r => r.Growth), "F2")}x its warm-up at most), " +
            (runs[0].TokensRun > 0 ? $"{F(runs.Average(r => r.TokensRunPerSecond), "F0")} padded tokens run/s, " : "") +
            $"{F(runs.Average(r => r.TextsPerSecond), "F1")} texts answered/s, p99 {F(runs.Average(r => r.P99Ms), "F0")} ms";
        text.AppendLine($"By the rule (RSS flat: end / warm-up <= {FlatGrowth:F2} in every repetition; at least {MinThroughput:P0} of the defaults' padded tokens run/s; then the lowest mean end RSS; means over the repetitions) the choice is **{chosen.Configuration.Name}**" +
                        (flat.Length == 0 ? " (no configuration stayed flat: the lowest end RSS)" : "") +
                        $": {Mean(chosen.Runs)}, against the defaults' {Mean(defaults.Runs)}. " +
                        $"Without the engine, the same load took {Mean(baseline.Runs)} (peak {F(baseline.Runs.Max(r => r.PeakMiB), "F0")} MiB{(baseline.Runs.Any(r => r.StoppedAtCap) ? $", stopped at the {RssCapMiB:F0} MiB cap" : "")}).");
        text.AppendLine();
        var engineRuns = engines.SelectMany(c => c.Runs).ToArray();
        text.AppendLine($"Method: RSS is VmRSS of the child's /proc/self/status {WarmupSeconds} s into the load (after warm-up) and at its end, both under load; peak is VmHWM. " +
                        "Answered texts are those of requests answered within the measured window; run texts and padded tokens are what the model ran (the engine's own " +
                        "`pgkd.serving.batch.*` metrics), including texts of requests later shed; cores used is the child's CPU time over the window, i.e. its share of this shared machine. " +
                        $"Under this load the engine ran {F(engineRuns.Average(r => r.TextsRunPerSecond), "F1")} texts/s but answered {F(engineRuns.Average(r => r.TextsPerSecond), "F1")}: " +
                        "a request whose deadline passes with texts still queued is shed even when others of its texts have run, and batches mix texts of many requests; " +
                        $"the old way answered {F(baseline.Runs.Average(r => r.TextsPerSecond), "F1")} texts/s, at a p99 of {F(baseline.Runs.Average(r => r.P99Ms) / 1000, "F0")} s.");
        return text.ToString();
    }
}
