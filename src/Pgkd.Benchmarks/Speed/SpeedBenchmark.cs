using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pgkd.Benchmarks.Live;
using Pgkd.Core.Data;
using Pgkd.Student;
using TorchSharp;
using static Pgkd.Benchmarks.Live.MachineInfo;

namespace Pgkd.Benchmarks.Speed;

/// <summary>
/// Issue 7 item 2: the student's speed, side by side in one process and one machine state: ONNX Runtime in-process, the
/// same model.onnx through the gateway over HTTP (the real AppHost, <see cref="LiveSystem"/>), and TorchSharp eager;
/// useful FLOP/s against this machine's measured fp32 GEMM rate; full fine-tune examples/s against PyTorch (Debian's
/// python3-torch running <c>pytorch_finetune.py</c>, the same architecture, step, batch, length and threads); latency
/// and cost per item against the paper's teacher figures.
/// </summary>
public static class SpeedBenchmark
{
    // The paper's Table 5 (Di Palo et al., arXiv 2411.05045): seconds and USD to classify one batch of 64 texts. Constants, cited.
    private static readonly (string Name, double SecondsPer64, double DollarsPer64)[] PaperTeachers =
    [
        ("Claude 3 Sonnet (paper, Table 5)", 60.64, 0.38),
        ("LLaMA-3-8B (paper, Table 5)", 58.05, 0.06),
    ];

    /// <summary>
    /// Assumed price of the student's CPU time: a 2-vCPU Linux VM at $0.096/hour (Azure D2s v5 pay-as-you-go list price),
    /// i.e. $0.048 per vCPU-hour, charged for the threads used. An assumption, not a measurement.
    /// </summary>
    private const double DollarsPerVcpuHour = 0.048;

    private const int Batch = 64, Batch1Texts = 150, Batch64Requests = 16, Passes = 3;
    private const int FineTuneBatch = 16, FineTuneLength = 64, FineTuneWarmup = 3, FineTuneSteps = 10;

    public static async Task<string> RunAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var loadAtStart = LoadAverage();
        var threads = options.Threads;
        var notes = new List<string>();
        var work = Directory.CreateTempSubdirectory("pgkd-bench-speed-").FullName;
        try
        {
            TorchDevice.SetThreads(threads);
            var texts = File.ReadLines(Path.Combine(options.DataDirectory, "test.jsonl")).Take(3000)
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
            var labels = new LabelSet(File.ReadAllLines(Path.Combine(options.DataDirectory, "labels.txt"))
                .Where(l => l.Trim().Length > 0).Select(l => l.Split('\t')[0].Trim()).ToArray());
            using var trainer = new StudentTrainer();
            var tokenizer = trainer.Tokenizer;

            // 1. Fine-tuning. (a) The project's trainer, full mode, on real texts of >= 64 tokens, batch 16, length 64.
            Console.Error.WriteLine("[bench] speed: fine-tuning (the project's trainer, the same step by hand, PyTorch)");
            var long64 = Enumerable.Range(0, FineTuneBatch * 12).Select(i => texts[i % texts.Length] + " " + texts[(i * 7 + 3) % texts.Length]).ToArray();
            var reports = new List<StudentTrainingProgress>();
            var localCheckpoint = trainer.Train(new StudentTrainingOptions
            {
                Mode = StudentTrainingMode.Full, Epochs = 1, BatchSize = FineTuneBatch, MaxLength = FineTuneLength, Threads = threads, Seed = 1,
                ProgressEverySteps = 1, Device = "cpu",
            }, long64.Select((t, i) => new LabeledExample(t, labels[i % labels.Count])).ToArray(), labels, Path.Combine(work, "local"), progress: reports.Add,
                cancellationToken: cancellationToken);
            var steady = reports.Where(r => r.Phase == StudentTrainingPhase.Training).Skip(FineTuneWarmup).ToArray();
            var trainerPerSecond = steady.Length == 0 ? double.NaN : steady.Length * FineTuneBatch / steady.Sum(r => FineTuneBatch / r.ExamplesPerSecond);
            // (b) The same step PyTorch's script times, in TorchSharp: random ids, every row 64 tokens.
            var torchSharp = TorchSharpFineTune(threads, labels.Count);
            // (c) PyTorch.
            var (pytorch, pytorchNote) = await PyTorchFineTuneAsync(threads, labels.Count, cancellationToken);
            if (pytorchNote is not null) notes.Add(pytorchNote);
            cancellationToken.ThrowIfCancellationRequested();

            // 2. The model every engine serves: the anatomy run's promoted checkpoint through the real system, else the local one.
            LiveSystem? system = null;
            LiveRun? run = null;
            string modelDirectory;
            try
            {
                system = await LiveSystem.AcquireAsync(options, cancellationToken);
                var runs = await system.RunsAsync(options, cancellationToken);
                run = runs[^1];
                modelDirectory = Path.Combine(work, "served");
                await system.DownloadFolderAsync($"{run.RunId}/checkpoints/round-{run.BestRound}/", modelDirectory, cancellationToken);
                // A head-mode run stores the head only: compose its model.onnx and model.int8.onnx here, as the gateway does.
                StudentCheckpoint.Load(modelDirectory).WriteServingGraphs();
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Console.Error.WriteLine($"[bench] speed: the real system is not available: {e}");
                notes.Add($"The gateway was not measured: the AppHost or its run failed ({e.GetType().Name}: {e.Message.Split('\n')[0]}); the in-process engines served the locally fine-tuned checkpoint instead.");
                await LiveSystem.ReleaseAsync(options, "speed", force: true);
                system = null;
                modelDirectory = localCheckpoint.Directory;
            }

            // 3. Inference engines, side by side.
            // One padded run per request (the engines' figures before sub-batching) and length-sorted runs with padding at most
            // OnnxRunOptions' default share (what OnnxStudent and the gateway's engine do now), side by side.
            var padded = new OnnxRunOptions { Threads = threads, BatchSize = Batch, PreferCuda = false, MaxPaddingShare = 1, MaxBatchTokens = int.MaxValue };
            var cut = new OnnxRunOptions { Threads = threads, BatchSize = Batch, PreferCuda = false };
            using var student = OnnxStudent.Load(modelDirectory, padded, tokenizer);
            using var cutStudent = OnnxStudent.Load(modelDirectory, cut, tokenizer);
            var maxLength = student.MaxLength;
            using var eager = new EagerStudent(modelDirectory, student.Labels.Count, tokenizer, maxLength, threads);
            // The int8 graph of the same checkpoint (trained before int8 export: quantized here, as the gateway would).
            var int8Path = Path.Combine(modelDirectory, StudentCheckpoint.Int8OnnxFileName);
            if (!File.Exists(int8Path))
                await File.WriteAllBytesAsync(int8Path, StudentQuantizer.QuantizeDynamicInt8(await File.ReadAllBytesAsync(Path.Combine(modelDirectory, StudentCheckpoint.OnnxFileName), cancellationToken)), cancellationToken);
            using var int8Student = OnnxStudent.Load(modelDirectory, padded, tokenizer, StudentPrecision.Int8);
            using var int8CutStudent = OnnxStudent.Load(modelDirectory, cut, tokenizer, StudentPrecision.Int8);
            var engines = new List<Engine>
            {
                new("ONNX Runtime in-process, one padded run per request", t => { student.PredictProbabilities(t); return Task.CompletedTask; }),
                new("ONNX Runtime in-process, int8 (model.int8.onnx), one padded run per request", t => { int8Student.PredictProbabilities(t); return Task.CompletedTask; }),
                new($"ONNX Runtime in-process, length-sorted runs (padding <= {cut.MaxPaddingShare:0.##})", t => { cutStudent.PredictProbabilities(t); return Task.CompletedTask; }),
                new($"ONNX Runtime in-process, int8, length-sorted runs (padding <= {cut.MaxPaddingShare:0.##})", t => { int8CutStudent.PredictProbabilities(t); return Task.CompletedTask; }),
            };
            var clients = new List<HttpClient>();
            if (system is not null && run is not null)
            {
                var proxied = LiveSystem.GatewayClient(system.GatewayUrl);
                clients.Add(proxied);
                engines.Add(new("gateway /v1/classify over HTTP (via the Aspire proxy)", t => Classify(proxied, run.RunId, t, cancellationToken)));
                if (system.GatewayDirectUrl is { } direct)
                {
                    var directClient = LiveSystem.GatewayClient(direct);
                    clients.Add(directClient);
                    engines.Add(new("gateway /v1/classify over HTTP (direct to Kestrel)", t => Classify(directClient, run.RunId, t, cancellationToken)));
                }
            }
            engines.Add(new("TorchSharp eager (no_grad)", t => { eager.Predict(t); return Task.CompletedTask; }));

            Console.Error.WriteLine($"[bench] speed: inference, {engines.Count} engines");
            var batch64Texts = texts.Skip(500).Take(Batch * Batch64Requests).ToArray();
            foreach (var engine in engines)
            {
                for (var i = 0; i < 20; i++) await engine.Classify([texts[i]]);
                for (var i = 0; i < 2; i++) await engine.Classify(batch64Texts.Skip(i * Batch).Take(Batch).ToArray());
            }
            // Batch 1, natural length: the engines take turns in blocks, so a load spike from elsewhere hits them alike.
            for (var block = 0; block < 2; block++)
                foreach (var engine in engines)
                    foreach (var t in texts.Skip(20 + block * Batch1Texts).Take(Batch1Texts))
                    {
                        var sw = Stopwatch.StartNew();
                        await engine.Classify([t]);
                        engine.Latencies.Add(sw.Elapsed.TotalMilliseconds);
                    }
            // Batch 64: requests of 64 texts in the data's order (each padded to its longest text), best of the passes.
            for (var pass = 0; pass < Passes; pass++)
                foreach (var engine in engines)
                {
                    var sw = Stopwatch.StartNew();
                    for (var r = 0; r < Batch64Requests; r++) await engine.Classify(batch64Texts.AsMemory(r * Batch, Batch).ToArray());
                    engine.Batch64Seconds = Math.Min(engine.Batch64Seconds, sw.Elapsed.TotalSeconds);
                }
            // ONNX Runtime with the 1,024 texts in one call: sorted by length, then cut into batches of 64 (bucketed serving).
            var sortedSeconds = double.MaxValue;
            for (var pass = 0; pass < Passes; pass++)
            {
                var sw = Stopwatch.StartNew();
                student.PredictProbabilities(batch64Texts);
                sortedSeconds = Math.Min(sortedSeconds, sw.Elapsed.TotalSeconds);
            }
            // The gateway under concurrent clients: single texts, closed loop, each level for a fixed time (its batching engine at work).
            var concurrency = new List<(int Clients, double TextsPerSecond, double P50, double P99, int Shed)>();
            if (clients.Count > 0 && run is not null)
            {
                var client = clients[^1]; // direct to Kestrel where known: the proxy would be measured too
                foreach (var level in ConcurrencyLevels)
                {
                    Console.Error.WriteLine($"[bench] speed: gateway with {level} concurrent clients, {ConcurrencySeconds} s");
                    concurrency.Add(await ConcurrentClientsAsync(client, run.RunId, texts, level, cancellationToken));
                }
            }
            foreach (var c in clients) c.Dispose();

            // 4. This machine's fp32 GEMM rate at the same threads, right after the inference runs (same machine load).
            Console.Error.WriteLine("[bench] speed: fp32 GEMM rate");
            (int, int, int)[] shapes = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 384, 1536), (4096, 1536, 384)];
            var gemmTorch = shapes.Max(s => Gemm.TorchRate(s.Item1, s.Item2, s.Item3));
            var gemmOrt = shapes.Max(s => Gemm.OrtRate(s.Item1, s.Item2, s.Item3, threads));
            var gemm = Math.Max(gemmTorch, gemmOrt);

            var usefulFlops = batch64Texts.Sum(t => ForwardFlops(tokenizer.Encode(t, maxLength).Length));
            var trainFlops = 3 * ForwardFlops(FineTuneLength); // forward + backward ~ 3x forward

            // --- the fragment ---
            var text = new StringBuilder();
            text.AppendLine("## Speed");
            text.AppendLine();
            text.AppendLine(Line(loadAtStart));
            text.AppendLine($"Options: {threads} threads everywhere (ONNX Runtime intra-op, libtorch, PyTorch, and the gateway's `Gateway__Inference__Threads`); " +
                            $"ONNX Runtime execution provider {student.ExecutionProvider}; dataset `{Path.GetFileName(options.DataDirectory)}` test texts at their natural length (max {maxLength} tokens); " +
                            (run is not null
                                ? $"the served model is run `{run.RunId}` round {run.BestRound} ({run.Mode} mode), made through the real AppHost by this benchmark (see Round anatomy)."
                                : "the served model is a locally fine-tuned checkpoint (the AppHost was not available)."));
            text.AppendLine();
            text.AppendLine("### Inference, side by side");
            text.AppendLine();
            var inProcess = engines[0];
            text.Append(Table(["engine", "batch 1 p50 ms", "batch 1 p99 ms", "batch 64 s (data order)", "batch 64 texts/s", "vs in-process", "useful GFLOP/s", "of GEMM rate"],
                engines.Select(e => (IReadOnlyList<string>)
                [
                    e.Name, F(e.Percentile(0.50), "F2"), F(e.Percentile(0.99), "F2"), F(e.Batch64Seconds / Batch64Requests, "F3"), F(e.Batch64PerSecond, "F0"),
                    F(e.Batch64PerSecond / inProcess.Batch64PerSecond, "F2"), F(usefulFlops / e.Batch64Seconds / 1e9, "F1"), F(usefulFlops / e.Batch64Seconds / gemm, "F2"),
                ]).Append(
                [
                    "ONNX Runtime in-process, 1,024 texts sorted by length", "", "", "", F(batch64Texts.Length / sortedSeconds, "F0"),
                    F(batch64Texts.Length / sortedSeconds / inProcess.Batch64PerSecond, "F2"), F(usefulFlops / sortedSeconds / 1e9, "F1"), F(usefulFlops / sortedSeconds / gemm, "F2"),
                ]).ToList()));
            var int8Engine = engines[1];
            var fp32Batch = inProcess.Batch64Seconds / Batch64Requests;
            var int8Batch = int8Engine.Batch64Seconds / Batch64Requests;
            var fp32CutBatch = engines[2].Batch64Seconds / Batch64Requests;
            var int8CutBatch = engines[3].Batch64Seconds / Batch64Requests;
            var bestBatch = new[] { fp32Batch, int8Batch, fp32CutBatch, int8CutBatch }.Min();
            text.AppendLine();
            text.AppendLine($"A batch of 64 test texts in data order: one padded run fp32 {F(fp32Batch, "F3")} s, int8 {F(int8Batch, "F3")} s; length-sorted runs fp32 {F(fp32CutBatch, "F3")} s " +
                            $"({F(fp32Batch / fp32CutBatch, "F2")}x), int8 {F(int8CutBatch, "F3")} s ({F(fp32Batch / int8CutBatch, "F2")}x the padded fp32 run); target <= 0.25 s: {(bestBatch <= 0.25 ? "met" : "missed")} " +
                            $"(the paper's BERT-base on a GPU: 0.46 s; its Claude 3 Sonnet: {F(PaperTeachers[0].SecondsPer64, "F2")} s, {F(PaperTeachers[0].SecondsPer64 / bestBatch, "N0")}x the fastest student here).");
            text.AppendLine();
            text.AppendLine($"fp32 GEMM rate at {threads} threads (best of {shapes.Length} shapes, incl. the student's [4096x384]x[384x1536]): libtorch `mm` {F(gemmTorch / 1e9, "F1")} GFLOP/s, " +
                            $"ONNX Runtime MatMul {F(gemmOrt / 1e9, "F1")} GFLOP/s; the ratios use the higher, {F(gemm / 1e9, "F1")} GFLOP/s.");
            // The gateway's engine cuts requests as OnnxStudent does now: the fair in-process reference is the cut fp32 engine.
            var gatewayRatio = engines.FirstOrDefault(e => e.Name.StartsWith("gateway", StringComparison.Ordinal)) is { } gatewayEngine
                ? gatewayEngine.Batch64PerSecond / engines[2].Batch64PerSecond : double.NaN;
            var best64 = Math.Max(usefulFlops / inProcess.Batch64Seconds, usefulFlops / sortedSeconds) / gemm;
            text.AppendLine();
            text.AppendLine($"Targets: student >= 0.6 of the GEMM rate at batch 64: {F(usefulFlops / inProcess.Batch64Seconds / gemm, "F2")} per request of 64, {F(usefulFlops / sortedSeconds / gemm, "F2")} length-sorted ({(best64 >= 0.6 ? "met" : "missed")}); " +
                            $"gateway batch-64 throughput >= 0.85 of in-process (fp32, length-sorted runs, as the gateway's engine cuts): {F(gatewayRatio, "F2")}{(double.IsNaN(gatewayRatio) ? " (not measured)" : gatewayRatio >= 0.85 ? " (met)" : " (missed)")}.");
            text.AppendLine();

            text.AppendLine("### The gateway under concurrent clients");
            text.AppendLine();
            if (concurrency.Count == 0) text.AppendLine("Not measured: the gateway was not available (see the note below).");
            else
            {
                text.Append(Table(["concurrent clients", "texts/s", "p50 ms", "p99 ms", "shed (503)"],
                    concurrency.Select(c => (IReadOnlyList<string>)[c.Clients.ToString(CultureInfo.InvariantCulture), F(c.TextsPerSecond, "F0"), F(c.P50, "F1"), F(c.P99, "F1"), c.Shed.ToString(CultureInfo.InvariantCulture)]).ToList()));
                text.AppendLine();
                text.AppendLine($"Each level: {ConcurrencySeconds} s of closed-loop clients, one test text per request in data order, over keep-alive connections " +
                                "directly to Kestrel; a shed client waits its Retry-After. The gateway's inference engine batches concurrent requests by length, so throughput rises with clients while one client's latency stays that of batch 1.");
            }
            text.AppendLine();

            text.AppendLine("### Fine-tuning (full mode: every weight, AdamW, batch 16, length 64)");
            text.AppendLine();
            var fineRows = new List<IReadOnlyList<string>>
            {
                new[] { "TorchSharp, the step below by hand", F(torchSharp.ExamplesPerSecond, "F1"), F(torchSharp.ExamplesPerSecond * trainFlops / 1e9, "F1"), F(torchSharp.ExamplesPerSecond * trainFlops / gemm, "F2"), $"{F(torchSharp.ForwardMs, "F0")} / {F(torchSharp.BackwardMs, "F0")} / {F(torchSharp.OptimizerMs, "F0")}" },
                new[] { pytorch is null ? "PyTorch (python3-torch)" : $"PyTorch {pytorch.Version} (Debian python3-torch, OpenBLAS), the same step", F(pytorch?.ExamplesPerSecond ?? double.NaN, "F1"), F((pytorch?.ExamplesPerSecond ?? double.NaN) * trainFlops / 1e9, "F1"), F((pytorch?.ExamplesPerSecond ?? double.NaN) * trainFlops / gemm, "F2"), pytorch is null ? "not measured" : $"{F(pytorch.ForwardMs, "F0")} / {F(pytorch.BackwardMs, "F0")} / {F(pytorch.OptimizerMs, "F0")}" },
                new[] { "the project's trainer (StudentTrainer, real texts cut at 64 tokens)", F(trainerPerSecond, "F1"), F(trainerPerSecond * trainFlops / 1e9, "F1"), F(trainerPerSecond * trainFlops / gemm, "F2"), "" },
            };
            text.Append(Table(["implementation", "examples/s", "useful GFLOP/s", "of GEMM rate", "forward / backward / clip+AdamW ms per step"], fineRows));
            text.AppendLine();
            var vsPyTorch = torchSharp.ExamplesPerSecond / (pytorch?.ExamplesPerSecond ?? double.NaN);
            text.AppendLine($"TorchSharp / PyTorch: {F(vsPyTorch, "F2")}x (target >= 1.0x: {(double.IsNaN(vsPyTorch) ? "not measured" : vsPyTorch >= 1.0 ? "met" : "missed")}). " +
                            $"Both time {FineTuneSteps} steps after {FineTuneWarmup} warm-up steps of the same model (StudentModel's layers: 6 post-LayerNorm BERT layers, hidden 384, 12 heads, FFN 1536, mean pooling, linear head; 22.6M weights), " +
                            "random token ids, zero_grad + cross-entropy forward, backward, clip_grad_norm_(1.0), AdamW.step.");
            text.AppendLine();

            text.AppendLine("### Per item, against the paper's teachers");
            text.AppendLine();
            var teacherRows = PaperTeachers.Select(p => (IReadOnlyList<string>)
                [p.Name, F(p.SecondsPer64, "F2"), F(p.SecondsPer64 / 64 * 1000, "F0"), F(p.DollarsPer64, "F2"), F(p.DollarsPer64 / 64 * 1e6, "N0")]).ToList();
            if (system is not null && system.RealTeacher && run is not null)
                teacherRows.Add(await RealTeacherRowAsync(system, run, cancellationToken));
            else
                teacherRows.Add(["configured real teacher", "—", "—", "—", "not configured (pass --teacher)"]);
            foreach (var e in engines)
            {
                var seconds64 = Batch / e.Batch64PerSecond;
                var dollars64 = seconds64 / 3600 * DollarsPerVcpuHour * threads;
                teacherRows.Add([$"student: {e.Name}", F(seconds64, "F3"), F(e.Percentile(0.50), "F1") + " (batch 1 p50)", F(dollars64, "E1"), F(dollars64 / 64 * 1e6, "F3")]);
            }
            text.Append(Table(["classifier", "s per batch of 64", "ms per item", "USD per batch of 64", "USD per million items"], teacherRows));
            text.AppendLine();
            var sonnet = PaperTeachers[0];
            text.AppendLine($"The student in-process classifies a batch of 64 {F(sonnet.SecondsPer64 / (Batch / inProcess.Batch64PerSecond), "N0")}x faster than the paper's Claude 3 Sonnet figure, " +
                            $"at {F(sonnet.DollarsPer64 / (Batch / inProcess.Batch64PerSecond / 3600 * DollarsPerVcpuHour * threads), "N0")}x lower cost. Student cost assumes ${DollarsPerVcpuHour:F3} per vCPU-hour " +
                            $"(a 2-vCPU Linux VM at $0.096/hour, Azure D2s v5 list price) for the {threads} threads used, at the measured batch-64 throughput; the paper's figures are its Table 5 constants, not measured here.");
            text.AppendLine();
            text.AppendLine("Method: batch 1 = one text per call, " + $"{2 * Batch1Texts} texts per engine in two blocks taken in turns; batch 64 = {Batch64Requests} calls of 64 texts (1,024 test texts in data order; each call sorted by length and either padded to its longest text in one run, or cut into runs whose padding stays within the share, as the gateway's engine does), best of {Passes} passes taken in turns. " +
                            "HTTP calls are sequential on one keep-alive connection, JSON in and out, API key checked, the run's model named. TorchSharp eager tokenizes the same way and runs StudentModel.forward under no_grad with the checkpoint's weights. " +
                            "Useful FLOPs count real tokens only (no padding): per token and layer 2*4*384^2 (Q,K,V,O) + 2*2*384*1536 (FFN) + 2*2*L*384 (attention over L tokens); training = 3x forward. " +
                            "GEMM rate = the best of libtorch `mm` and a one-node ONNX Runtime MatMul over square and student-shaped matrices.");
            foreach (var note in notes)
            {
                text.AppendLine();
                text.AppendLine(note);
                // Said on the console too: a newcomer reading the run's output learns what is missing and why.
                Console.Error.WriteLine($"[bench] speed: {note}");
            }
            return text.ToString();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await LiveSystem.ReleaseAsync(options, "speed", force: true);
            throw;
        }
        finally
        {
            await LiveSystem.ReleaseAsync(options, "speed");
            try { Directory.Delete(work, true); } catch (IOException) { }
        }
    }

    private static readonly int[] ConcurrencyLevels = [1, 8, 32];
    private const int ConcurrencySeconds = 20;

    private static async Task<(int Clients, double TextsPerSecond, double P50, double P99, int Shed)> ConcurrentClientsAsync(
        HttpClient client, Guid runId, string[] texts, int clients, CancellationToken cancellationToken)
    {
        var latencies = new List<double>();
        var shed = 0;
        var next = -1;
        var stopAt = Stopwatch.GetTimestamp() + ConcurrencySeconds * Stopwatch.Frequency;
        async Task One()
        {
            while (Stopwatch.GetTimestamp() < stopAt && !cancellationToken.IsCancellationRequested)
            {
                var t = texts[(int)((uint)Interlocked.Increment(ref next) % (uint)texts.Length)];
                var watch = Stopwatch.StartNew();
                using var response = await client.PostAsJsonAsync("/v1/classify", new JsonObject { ["text"] = t, ["run"] = runId.ToString() }, cancellationToken);
                await response.Content.ReadAsByteArrayAsync(cancellationToken);
                if (response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable)
                {
                    Interlocked.Increment(ref shed);
                    await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1), cancellationToken);
                    continue;
                }
                if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"/v1/classify answered {(int)response.StatusCode}");
                lock (latencies) latencies.Add(watch.Elapsed.TotalMilliseconds);
            }
        }
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(One, cancellationToken)));
        var sorted = latencies.Order().ToArray();
        double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return (clients, sorted.Length / clock.Elapsed.TotalSeconds, P(0.5), P(0.99), shed);
    }

    private static async Task Classify(HttpClient client, Guid runId, IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        JsonObject body = texts.Count == 1
            ? new JsonObject { ["text"] = texts[0], ["run"] = runId.ToString() }
            : new JsonObject { ["texts"] = new JsonArray(texts.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()), ["run"] = runId.ToString() };
        using var response = await client.PostAsJsonAsync("/v1/classify", body, cancellationToken);
        var answer = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"/v1/classify answered {(int)response.StatusCode}: {answer}");
    }

    private static async Task<IReadOnlyList<string>> RealTeacherRowAsync(LiveSystem system, LiveRun run, CancellationToken cancellationToken)
    {
        double seconds = 0, dollars = 0;
        var samples = 0;
        for (var r = 1; r <= run.Rounds; r++)
        {
            var g = await system.ReadJsonAsync($"{run.RunId}/generations/round-{r}.json", cancellationToken);
            if (g is null) continue;
            seconds += (double)(g["teacherSeconds"] ?? g["TeacherSeconds"] ?? 0);
            dollars += (double)(g["costUsd"] ?? g["CostUsd"] ?? 0);
            samples += (int)(g["accepted"] ?? g["Accepted"] ?? 0);
        }
        if (samples == 0) return ["configured real teacher (generation)", "—", "—", "—", "no accepted samples"];
        return ["configured real teacher: writing one accepted sample (not classifying; from the anatomy run)", F(seconds / samples * 64, "F2"), F(seconds / samples * 1000, "F0"),
            F(dollars / samples * 64, "F4"), F(dollars / samples * 1e6, "N0")];
    }

    /// <summary>Forward FLOPs of the encoder for one text of L tokens (multiply-add = 2 FLOPs); pooling and head are negligible.</summary>
    internal static double ForwardFlops(int l) => MiniLMShape.Layers * (
        2.0 * l * 4 * MiniLMShape.Hidden * MiniLMShape.Hidden
        + 2.0 * l * 2 * MiniLMShape.Hidden * MiniLMShape.Intermediate
        + 2.0 * 2 * l * l * MiniLMShape.Hidden);

    private sealed class Engine(string name, Func<IReadOnlyList<string>, Task> classify)
    {
        public string Name { get; } = name;
        public Func<IReadOnlyList<string>, Task> Classify { get; } = classify;
        public List<double> Latencies { get; } = [];
        public double Batch64Seconds { get; set; } = double.MaxValue;
        public double Batch64PerSecond => Batch * Batch64Requests / Batch64Seconds;

        public double Percentile(double p)
        {
            if (Latencies.Count == 0) return double.NaN;
            var sorted = Latencies.Order().ToArray();
            return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        }
    }

    public sealed record FineTuneSpeed(string Version, double ExamplesPerSecond, double ForwardMs, double BackwardMs, double OptimizerMs);

    /// <summary>The full fine-tune step of pytorch_finetune.py, in TorchSharp: same model, inputs, step and timing.</summary>
    private static FineTuneSpeed TorchSharpFineTune(int threads, int classes)
    {
        TorchDevice.SetThreads(threads);
        using var scope = torch.NewDisposeScope();
        torch.random.manual_seed(1);
        using var model = new StudentModel(classes);
        model.Encoder.LoadPretrained(PretrainedMiniLM.Ensure().ReadModelBytes()); // the weights do not change the speed
        model.train();
        using var opt = torch.optim.AdamW(model.parameters(), 2e-5, weight_decay: 0.01);
        var rng = new Random(2);
        double f = 0, b = 0, o = 0, total = 0;
        for (var step = 0; step < FineTuneWarmup + FineTuneSteps; step++)
        {
            using var s = torch.NewDisposeScope();
            var ids = torch.tensor(Enumerable.Range(0, FineTuneBatch * FineTuneLength).Select(_ => (long)rng.Next(1000, MiniLMShape.VocabularySize)).ToArray(), [FineTuneBatch, FineTuneLength]);
            var mask = torch.ones([FineTuneBatch, FineTuneLength], torch.int64);
            var y = torch.tensor(Enumerable.Range(0, FineTuneBatch).Select(i => (long)(i % classes)).ToArray());
            var sw = Stopwatch.StartNew();
            opt.zero_grad();
            var loss = torch.nn.functional.cross_entropy(model.forward(ids, mask), y);
            loss.item<float>();
            var t1 = sw.Elapsed.TotalSeconds;
            loss.backward();
            var t2 = sw.Elapsed.TotalSeconds;
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0);
            opt.step();
            var t3 = sw.Elapsed.TotalSeconds;
            if (step >= FineTuneWarmup) { f += t1; b += t2 - t1; o += t3 - t2; total += t3; }
        }
        return new FineTuneSpeed("TorchSharp", FineTuneBatch * FineTuneSteps / total, 1000 * f / FineTuneSteps, 1000 * b / FineTuneSteps, 1000 * o / FineTuneSteps);
    }

    /// <summary>Runs pytorch_finetune.py with Debian's python3 (python3-torch); null and a note when it cannot.</summary>
    private static async Task<(FineTuneSpeed?, string?)> PyTorchFineTuneAsync(int threads, int classes, CancellationToken cancellationToken)
    {
        var script = FindScript();
        if (script is null) return (null, "PyTorch was not measured: Speed/pytorch_finetune.py was not found next to the sources.");
        // ./build.sh bench says why it could not install python3-torch; that reason beats the interpreter's exit code.
        if (Environment.GetEnvironmentVariable("PGKD_BENCH_PYTORCH_UNAVAILABLE") is { Length: > 0 } unavailable)
            return (null, $"PyTorch was not measured: {unavailable}.");
        var python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; // Debian's python3-torch lives in the system Python
        var start = new ProcessStartInfo(python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { script, "--threads", $"{threads}", "--batch", $"{FineTuneBatch}", "--length", $"{FineTuneLength}",
                     "--warmup", $"{FineTuneWarmup}", "--steps", $"{FineTuneSteps}", "--classes", $"{classes}" })
            start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = $"{threads}";
        start.Environment["OPENBLAS_NUM_THREADS"] = $"{threads}";
        try
        {
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0)
            {
                var error = (await stderr).Trim().Split('\n').LastOrDefault() ?? "";
                return (null, $"PyTorch was not measured: `{python} pytorch_finetune.py` exited {process.ExitCode} ({error}); `./build.sh bench` installs python3-torch with apt.");
            }
            var json = JsonNode.Parse((await stdout).Trim().Split('\n')[^1])!;
            return (new FineTuneSpeed((string)json["torch"]!, (double)json["examplesPerSecond"]!, (double)json["forwardMs"]!, (double)json["backwardMs"]!, (double)json["optimizerMs"]!), null);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (null, $"PyTorch was not measured: cannot start {python} ({e.Message}).");
        }
    }

    private static string? FindScript()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "src", "Pgkd.Benchmarks", "Speed", "pytorch_finetune.py");
            if (File.Exists(path)) return path;
        }
        return null;
    }
}
