using System.Diagnostics;
using System.Text;
using Pgkd.Benchmarks.Quality;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Storage;
using Pgkd.Student;
using static Pgkd.Benchmarks.Live.MachineInfo;

namespace Pgkd.Benchmarks.Int8;

/// <summary>
/// Issue 18 point 5: the int8 student (model.int8.onnx, <see cref="StudentQuantizer"/>) against fp32 (model.onnx) on each
/// dataset: a full-mode seed-only student per seed (round 0 of a run, trained with the options the trainer service uses),
/// both graphs scored on the test split (accuracy and the paired difference), and their throughput on the test texts.
/// </summary>
public static class Int8Benchmark
{
    private const int Batch = 64, Repetitions = 5, Chunk = 512;

    private sealed record Scores(string Dataset, int Seed, double TrainSeconds, double Fp32Accuracy, double Int8Accuracy, int Texts,
        int Changed, int Broken, int Fixed, double MaxProbabilityDifference, long Fp32Bytes, long Int8Bytes);

    private sealed record Throughput(string Dataset, double MeanTokens, double[] Fp32, double[] Int8)
    {
        public double Fp32Median => Median(Fp32);
        public double Int8Median => Median(Int8);
        public double[] Ratios => Int8.Zip(Fp32, (a, b) => a / b).Order().ToArray();
    }

    public static Task<string> RunAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var loadAtStart = LoadAverage();
        var work = Directory.CreateTempSubdirectory("pgkd-bench-int8-").FullName;
        var scores = new List<Scores>();
        var speeds = new List<Throughput>();
        var serving = new OnnxRunOptions { Threads = options.Threads, BatchSize = Batch, PreferCuda = false };
        // Round 0 of a full-mode run, as the trainer service trains it (InProcessRun's round 0 is the same call).
        var student = new StudentSettings { Mode = "full" };
        StudentTrainingOptions? trainingOptions = null;
        try
        {
            using var trainer = new StudentTrainer();
            foreach (var folder in options.Int8DataDirectories)
            {
                var data = BenchmarkData.Load(folder);
                var name = Path.GetFileName(folder);
                var texts = data.Test.Examples.Select(e => e.Text).ToArray();
                var truth = data.Test.LabelIndices(data.Labels);
                foreach (var seed in options.Seeds)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    trainingOptions = Pgkd.Trainer.TrainingStep.Options(student, RunConfiguration.Default with { Seed = seed }, data.Labels.Count, 0, options.Threads, "auto");
                    Console.Error.WriteLine($"[int8] {name} seed {seed}: training round 0 ({data.Train.Count} seed texts, {trainingOptions.Epochs} epochs)");
                    var clock = Stopwatch.StartNew();
                    var checkpoint = trainer.Train(trainingOptions, data.Train.Examples, data.Labels, Path.Combine(work, $"{name}-s{seed}"),
                        cancellationToken: cancellationToken);
                    var trainSeconds = clock.Elapsed.TotalSeconds;
                    using var fp32 = OnnxStudent.Load(checkpoint.Directory, serving, trainer.Tokenizer, StudentPrecision.Fp32);
                    using var int8 = OnnxStudent.Load(checkpoint.Directory, serving, trainer.Tokenizer, StudentPrecision.Int8);
                    var p32 = fp32.PredictProbabilities(texts);
                    var p8 = int8.PredictProbabilities(texts);
                    var (y32, y8) = (p32.Select(ArgMax).ToArray(), p8.Select(ArgMax).ToArray());
                    var row = new Scores(name, seed, trainSeconds,
                        ClassificationMetrics.Evaluate(data.Test, ClassificationMetrics.ToDouble(p32), data.Labels).Accuracy,
                        ClassificationMetrics.Evaluate(data.Test, ClassificationMetrics.ToDouble(p8), data.Labels).Accuracy,
                        texts.Length,
                        Changed: y32.Zip(y8).Count(p => p.First != p.Second),
                        Broken: Enumerable.Range(0, texts.Length).Count(i => y32[i] == truth[i] && y8[i] != truth[i]),
                        Fixed: Enumerable.Range(0, texts.Length).Count(i => y32[i] != truth[i] && y8[i] == truth[i]),
                        MaxProbabilityDifference: p32.Zip(p8, (a, b) => a.Zip(b, (x, z) => Math.Abs(x - z)).Max()).Max(),
                        new FileInfo(checkpoint.OnnxPath).Length, new FileInfo(checkpoint.Int8OnnxPath).Length);
                    scores.Add(row);
                    Console.Error.WriteLine($"[int8] {name} seed {seed}: trained in {trainSeconds:F0} s; test accuracy fp32 {row.Fp32Accuracy:F4}, int8 {row.Int8Accuracy:F4}; " +
                                            $"{row.Changed} of {texts.Length} predictions change");
                    // Throughput does not depend on the weights: measured once per dataset, with the first seed's model.
                    if (seed == options.Seeds[0])
                    {
                        var speed = MeasureThroughput(name, fp32, int8, texts, cancellationToken);
                        speeds.Add(speed);
                        Console.Error.WriteLine($"[int8] {name}: fp32 {speed.Fp32Median:F0} texts/s, int8 {speed.Int8Median:F0} texts/s (x{speed.Int8Median / speed.Fp32Median:F2})");
                    }
                    Directory.Delete(checkpoint.Directory, recursive: true);
                }
            }
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
        return Task.FromResult(Render(options, loadAtStart, trainingOptions!, scores, speeds));
    }

    /// <summary>
    /// Texts per second of each graph through <see cref="OnnxStudent.PredictProbabilities"/> (tokenize, sort by length, batches of 64),
    /// after one warm-up chunk each. The two take turns chunk by chunk (who goes first alternates), so a load change on this shared
    /// machine hits both alike; one value per repetition over all the texts.
    /// </summary>
    private static Throughput MeasureThroughput(string dataset, OnnxStudent fp32, OnnxStudent int8, string[] texts, CancellationToken cancellationToken)
    {
        var chunks = texts.Chunk(Chunk).ToArray();
        fp32.PredictProbabilities(chunks[0]);
        int8.PredictProbabilities(chunks[0]);
        var seconds = new double[Repetitions, 2];
        OnnxStudent[] students = [fp32, int8];
        for (var rep = 0; rep < Repetitions; rep++)
            for (var c = 0; c < chunks.Length; c++)
                for (var turn = 0; turn < 2; turn++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var which = (turn + rep + c) % 2;
                    var clock = Stopwatch.StartNew();
                    students[which].PredictProbabilities(chunks[c]);
                    seconds[rep, which] += clock.Elapsed.TotalSeconds;
                }
        var tokens = texts.Average(t => fp32.Tokenizer.Encode(t, fp32.MaxLength).Length);
        return new Throughput(dataset, tokens,
            Enumerable.Range(0, Repetitions).Select(r => texts.Length / seconds[r, 0]).ToArray(),
            Enumerable.Range(0, Repetitions).Select(r => texts.Length / seconds[r, 1]).ToArray());
    }

    private static string Render(BenchmarkOptions options, string loadAtStart, StudentTrainingOptions training, IReadOnlyList<Scores> scores,
        IReadOnlyList<Throughput> speeds)
    {
        var text = new StringBuilder();
        text.AppendLine("## Int8 student");
        text.AppendLine();
        text.AppendLine(Line(loadAtStart));
        text.AppendLine($"Options: a full-mode seed-only student per dataset and seed (round 0 of a run, trained on `seed_train.jsonl` alone with the trainer " +
                        $"service's options: {training.Epochs} epochs, learning rate {training.LearningRate:G}, batch {training.BatchSize}, max length {training.MaxLength}, " +
                        $"{options.Threads} threads; the training seed is the run seed's round-0 seed), exported as `model.onnx` (fp32) and `model.int8.onnx` " +
                        "(every MatMul with a constant weight matrix as com.microsoft DynamicQuantizeMatMul: int8 weights, symmetric per output column; " +
                        $"activations quantized per call), both scored on the whole test split with ONNX Runtime on CPU, {options.Threads} intra-op threads, batches of {Batch} sorted by length.");
        text.AppendLine();
        text.AppendLine("### Accuracy (test split)");
        text.AppendLine();
        text.Append(Table(["dataset", "seed", "fp32 accuracy", "int8 accuracy", "int8 - fp32 (points)", "predictions changed", "fp32 right, int8 wrong", "fp32 wrong, int8 right", "max abs prob difference"],
            scores.Select(s => (IReadOnlyList<string>)
            [
                s.Dataset, s.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture), F(s.Fp32Accuracy, "F4"), F(s.Int8Accuracy, "F4"),
                F(100 * (s.Int8Accuracy - s.Fp32Accuracy), "+0.00;-0.00;0.00"), $"{s.Changed} of {s.Texts}", $"{s.Broken}", $"{s.Fixed}", F(s.MaxProbabilityDifference, "F3"),
            ])));
        text.AppendLine();
        foreach (var group in scores.GroupBy(s => s.Dataset))
        {
            var deltas = group.Select(s => 100 * (s.Int8Accuracy - s.Fp32Accuracy)).ToArray();
            text.AppendLine($"- {group.Key}: int8 - fp32 over {deltas.Length} seed(s): mean {F(deltas.Average(), "+0.00;-0.00;0.00")} points, worst {F(deltas.Min(), "+0.00;-0.00;0.00")}; " +
                            $"fp32 accuracy mean {F(group.Average(s => s.Fp32Accuracy), "F4")}; files {F(group.First().Fp32Bytes / 1e6, "F1")} MB fp32, {F(group.First().Int8Bytes / 1e6, "F1")} MB int8 " +
                            "(the 30522 x 384 word-embedding table stays fp32); round-0 training took " +
                            string.Join(", ", group.Select(s => $"{s.TrainSeconds:F0} s")) + ".");
        }
        text.AppendLine();
        text.AppendLine("### Throughput (test texts, in-process)");
        text.AppendLine();
        text.Append(Table(["dataset", "texts", "mean tokens", "fp32 texts/s (median)", "int8 texts/s (median)", "int8 / fp32", "per-repetition ratio range"],
            speeds.Select(s => (IReadOnlyList<string>)
            [
                s.Dataset, $"{scores.First(x => x.Dataset == s.Dataset).Texts}", F(s.MeanTokens, "F1"), F(s.Fp32Median, "F0"), F(s.Int8Median, "F0"),
                F(s.Int8Median / s.Fp32Median, "F2"), $"{F(s.Ratios[0], "F2")} - {F(s.Ratios[^1], "F2")}",
            ])));
        text.AppendLine();
        text.AppendLine($"Method: after a warm-up of {Chunk} texts each, fp32 and int8 take turns in chunks of {Chunk} test texts (who goes first alternates), {Repetitions} repetitions over all " +
                        "test texts; each call tokenizes, sorts by length and runs batches of 64 (`OnnxStudent.PredictProbabilities`, the serving path). Medians over the repetitions; " +
                        "measured with the first seed's model (speed does not depend on the weights).");
        text.AppendLine();
        // The accuracy target is read two ways, both reported: per dataset (mean over seeds) and per single model.
        var meanDeltas = scores.GroupBy(s => s.Dataset).Select(g => (Dataset: g.Key, Delta: g.Average(s => 100 * (s.Int8Accuracy - s.Fp32Accuracy)))).ToArray();
        var worst = scores.MinBy(s => -Math.Abs(s.Int8Accuracy - s.Fp32Accuracy));
        var worstRatio = speeds.Count == 0 ? double.NaN : speeds.Min(s => s.Int8Median / s.Fp32Median);
        text.AppendLine($"Targets (issue 18): throughput int8 / fp32 >= 1.8x: worst dataset {F(worstRatio, "F2")}x ({(worstRatio >= 1.8 ? "met" : "missed")}); " +
                        "test accuracy within 0.5 points of fp32 on each dataset, mean over seeds: " +
                        string.Join(", ", meanDeltas.Select(d => $"{d.Dataset} {F(d.Delta, "+0.00;-0.00;0.00")}")) +
                        $" ({(meanDeltas.All(d => Math.Abs(d.Delta) <= 0.5) ? "met" : "missed")}); for every single model: largest difference " +
                        (worst is null ? "n/a" : $"{F(100 * (worst.Int8Accuracy - worst.Fp32Accuracy), "+0.00;-0.00;0.00")} points ({worst.Dataset} seed {worst.Seed})") +
                        $" ({(scores.All(s => Math.Abs(100 * (s.Int8Accuracy - s.Fp32Accuracy)) <= 0.5) ? "met" : "missed")}).");
        return text.ToString();
    }

    private static int ArgMax(float[] p) => Array.IndexOf(p, p.Max());

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
