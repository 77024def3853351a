using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Student;
using Pgkd.Student.Serving;
using static Pgkd.Benchmarks.Live.MachineInfo;

namespace Pgkd.Benchmarks.Serving;

/// <summary>
/// Issue 18 point 7 without HTTP: the serving engine under 32 closed-loop clients in this process, with the load
/// scenario's request mix (45 % single texts, 30 % batches of 64, 15 % batches of 2-16, 7 % of texts runs of thousands of
/// characters), clients that sleep the whole seconds of Retry-After when shed (as the gateway writes the header), and
/// throughput against ONNX Runtime in-process on the same texts in length-sorted batches of 64. It separates what the
/// engine's admission, deadline and Retry-After cost from what Kestrel and JSON cost, in a minute per setting.
/// </summary>
public static class EngineLoadBenchmark
{
    private const int Clients = 32, Repetitions = 2;
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(6), Measured = TimeSpan.FromSeconds(30);

    private sealed record Setting(string Name, Func<InferenceOptions> Options);

    private sealed class Outcome
    {
        public int Accepted, AcceptedTexts, ShedFull, ShedDeadline;
        public double Slept, Busy;
        public readonly List<double> Latencies = [];
    }

    public static async Task<string> RunAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var loadAtStart = LoadAverage();
        var work = Directory.CreateTempSubdirectory("pgkd-bench-engine-load-").FullName;
        try
        {
            var news = File.ReadLines(Path.Combine(options.DataDirectory, "test.jsonl")).Take(2000)
                .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
            var requests = Workload(new Random(18), news, 4000);
            var sameTexts = requests.SelectMany(r => r).Take(1500).ToArray();
            var checkpoint = QuickStudent(options, work, cancellationToken);
            var tokenizer = StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure());
            OnnxStudent Load() => OnnxStudent.Load(checkpoint, new OnnxRunOptions
            {
                // The gateway's session settings (ModelRegistry): memory patterns and spinning off.
                Threads = options.Threads, PreferCuda = false, MemoryPattern = false, SpinWait = false,
            }, tokenizer);

            Setting[] settings =
            [
                new("deadline 1 s, Retry-After until the queue drained (before)", () => new InferenceOptions { Deadline = TimeSpan.FromSeconds(1), RetryAfter = RetryAfterPolicy.QueueDrained }),
                new("deadline 1 s, Retry-After until admitted", () => new InferenceOptions { Deadline = TimeSpan.FromSeconds(1), RetryAfter = RetryAfterPolicy.UntilAdmitted }),
                new("deadline 1.5 s, Retry-After until admitted", () => new InferenceOptions { Deadline = TimeSpan.FromSeconds(1.5), RetryAfter = RetryAfterPolicy.UntilAdmitted }),
            ];
            var results = settings.Select(_ => new List<(Outcome Outcome, double InProcess)>()).ToArray();
            var loads = new List<string>();
            for (var rep = 0; rep < Repetitions; rep++)
                for (var k = 0; k < settings.Length; k++)
                {
                    var which = (k + rep) % settings.Length;
                    var inProcess = InProcessTextsPerSecond(Load, sameTexts);
                    Console.Error.WriteLine($"[bench] engine-load: {settings[which].Name}, repetition {rep + 1}");
                    var engineOptions = settings[which].Options();
                    engineOptions.Threads = options.Threads;
                    var outcome = await DriveAsync(Load, engineOptions, requests, cancellationToken);
                    results[which].Add((outcome, inProcess));
                    loads.Add(LoadAverage().Split(' ')[0]);
                    Console.Error.WriteLine($"[bench] engine-load: {outcome.AcceptedTexts / Measured.TotalSeconds:F0} texts/s against {inProcess:F0} in-process; " +
                                            $"shed {outcome.ShedFull} + {outcome.ShedDeadline}, slept {outcome.Slept:F0} s, busy {outcome.Busy / Measured.TotalSeconds:P0}; load {loads[^1]}");
                }

            var text = new StringBuilder();
            text.AppendLine("## Serving engine under 32 clients, in-process");
            text.AppendLine();
            text.AppendLine(Line(loadAtStart));
            text.AppendLine($"Options: {Clients} closed-loop clients calling `InferenceEngine.ClassifyAsync` in this process (no HTTP), {options.Threads} ONNX Runtime threads, " +
                            $"the gateway's session settings; each setting {WarmUp.TotalSeconds:F0} s warm-up + {Measured.TotalSeconds:F0} s measured, {Repetitions} repetitions taken in turns; " +
                            "in-process = `OnnxStudent.PredictProbabilities` on the first 1,500 texts of the same requests (length-sorted batches of 64), measured just before each setting's run.");
            text.AppendLine();
            text.Append(Table(["setting", "texts/s", "in-process texts/s", "ratio", "shed (queue full + deadline)", "client sleep s", "model busy", "accepted p50 / p99 s"],
                settings.SelectMany((s, i) => results[i].Select(r => (IReadOnlyList<string>)
                [
                    s.Name, F(r.Outcome.AcceptedTexts / Measured.TotalSeconds, "F0"), F(r.InProcess, "F0"), F(r.Outcome.AcceptedTexts / Measured.TotalSeconds / r.InProcess, "F2"),
                    $"{r.Outcome.ShedFull} + {r.Outcome.ShedDeadline}", F(r.Outcome.Slept, "F0"), F(r.Outcome.Busy / Measured.TotalSeconds, "P0"),
                    $"{F(Percentile(r.Outcome.Latencies, 0.5), "F2")} / {F(Percentile(r.Outcome.Latencies, 0.99), "F2")}",
                ]))));
            text.AppendLine();
            text.AppendLine($"Load average (1 min) after each run: {string.Join(", ", loads)}. \"Model busy\" is the share of the measured time inside ONNX Runtime runs.");
            return text.ToString();
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>A head-mode student trained in seconds on 64 seed texts: speed does not depend on the weights.</summary>
    internal static string QuickStudent(BenchmarkOptions options, string work, CancellationToken cancellationToken)
    {
        var labels = new LabelSet(File.ReadAllLines(Path.Combine(options.DataDirectory, "labels.txt"))
            .Where(l => l.Trim().Length > 0).Select(l => l.Split('\t')[0].Trim()).ToArray());
        var seed = File.ReadLines(Path.Combine(options.DataDirectory, "seed_train.jsonl")).Take(64).Select(l =>
        {
            var e = JsonDocument.Parse(l).RootElement;
            return new LabeledExample(e.GetProperty("text").GetString()!, e.GetProperty("label").GetString()!);
        }).ToArray();
        using var trainer = new StudentTrainer();
        return trainer.Train(new StudentTrainingOptions
        {
            Mode = StudentTrainingMode.Head, Epochs = 1, BatchSize = 16, MaxLength = 128, Threads = options.Threads, Seed = 1, Device = "cpu",
        }, seed, labels, Path.Combine(work, "student"), cancellationToken: cancellationToken).Directory;
    }

    private static double InProcessTextsPerSecond(Func<OnnxStudent> load, string[] texts)
    {
        using var student = load();
        student.PredictProbabilities(texts.Take(128).ToArray()); // warm-up
        var watch = Stopwatch.StartNew();
        student.PredictProbabilities(texts);
        return texts.Length / watch.Elapsed.TotalSeconds;
    }

    private static async Task<Outcome> DriveAsync(Func<OnnxStudent> load, InferenceOptions settings, IReadOnlyList<string[]> requests, CancellationToken cancellationToken)
    {
        var modelId = $"engine-load-{Guid.NewGuid():N}";
        using var engine = new InferenceEngine(load(), settings, modelId);
        var outcome = new Outcome();
        var measuring = false;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) => { if (instrument.Name == "pgkd.serving.inference.duration") l.EnableMeasurementEvents(instrument); };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            if (!Volatile.Read(ref measuring)) return;
            foreach (var tag in tags)
                if (tag.Key == "pgkd.model" && (string?)tag.Value == modelId)
                    lock (outcome) outcome.Busy += value;
        });
        listener.Start();

        var next = -1;
        async Task PhaseAsync(TimeSpan duration, bool count)
        {
            var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            async Task ClientAsync()
            {
                while (Stopwatch.GetTimestamp() < stopAt && !cancellationToken.IsCancellationRequested)
                {
                    var request = requests[(int)((uint)Interlocked.Increment(ref next) % (uint)requests.Count)];
                    var watch = Stopwatch.StartNew();
                    TimeSpan? retryAfter = null;
                    var deadline = false;
                    try
                    {
                        await engine.ClassifyAsync(request, cancellationToken);
                    }
                    catch (InferenceQueueFullException e) { retryAfter = e.RetryAfter; }
                    catch (InferenceDeadlineException e) { retryAfter = e.RetryAfter; deadline = true; }
                    if (retryAfter is { } wait)
                    {
                        // As the gateway writes the header: whole seconds, at least 1.
                        var seconds = Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds));
                        if (count)
                            lock (outcome)
                            {
                                if (deadline) outcome.ShedDeadline++; else outcome.ShedFull++;
                                outcome.Slept += seconds;
                            }
                        await Task.Delay(TimeSpan.FromSeconds(seconds), cancellationToken);
                        continue;
                    }
                    if (count)
                        lock (outcome)
                        {
                            outcome.Accepted++;
                            outcome.AcceptedTexts += request.Length;
                            outcome.Latencies.Add(watch.Elapsed.TotalSeconds);
                        }
                }
            }
            await Task.WhenAll(Enumerable.Range(0, Clients).Select(_ => Task.Run(ClientAsync, cancellationToken)));
        }
        await PhaseAsync(WarmUp, count: false);
        Volatile.Write(ref measuring, true);
        await PhaseAsync(Measured, count: true);
        Volatile.Write(ref measuring, false);
        return outcome;
    }

    /// <summary>The load scenario's mix of requests that reach the model (413 and 400 never do).</summary>
    private static List<string[]> Workload(Random random, string[] news, int count)
    {
        string Text()
        {
            if (random.NextDouble() >= 0.07) return news[random.Next(news.Length)];
            var builder = new StringBuilder();
            while (builder.Length < random.Next(2000, 9500)) builder.Append(news[random.Next(news.Length)]).Append(' ');
            return builder.ToString()[..Math.Min(builder.Length, 10_000)];
        }
        var requests = new List<string[]>(count);
        for (var i = 0; i < count; i++)
        {
            var pick = random.NextDouble() * 0.90; // single 0.45, batch of 64 0.30, 2-16 0.15
            var n = pick < 0.45 ? 1 : pick < 0.75 ? 64 : random.Next(2, 17);
            requests.Add(Enumerable.Range(0, n).Select(_ => Text()).ToArray());
        }
        return requests;
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
    }
}
