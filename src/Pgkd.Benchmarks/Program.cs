using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Student;
using TorchSharp;

// Student speed on this machine. Usage:
//   dotnet run -c Release --project src/Pgkd.Benchmarks -- [--threads 2] [--train-steps 12] [--data ../shared/data/agnews]
// Prints one table: fine-tune examples/s (full mode, length 64, batch 16), ONNX Runtime batch-1 latency
// p50/p99 and batch-64 throughput, the measured fp32 GEMM rate and the student's useful FLOP/s as a ratio of it.

var inv = CultureInfo.InvariantCulture;
var arguments = args.ToList();
string? Arg(string name) { var i = arguments.IndexOf(name); return i >= 0 && i + 1 < arguments.Count ? arguments[i + 1] : null; }
var threads = int.Parse(Arg("--threads") ?? "2", inv);
var trainSteps = int.Parse(Arg("--train-steps") ?? "12", inv);
var dataDir = Arg("--data") ?? FindData();

var texts = LoadTexts(dataDir);
Console.Error.WriteLine($"texts: {texts.Length} from {(dataDir ?? "built-in sentences")}; threads {threads}");
TorchDevice.SetThreads(threads);
var labels = new LabelSet("World", "Sports", "Business", "Sci/Tech");
var work = Path.Combine(Path.GetTempPath(), $"pgkd-bench-{Environment.ProcessId}");
using var trainer = new StudentTrainer();
var tokenizer = trainer.Tokenizer;

// 1. Fine-tune: full mode, every text at least 64 tokens (two texts joined), cut at 64; batch 16.
var long64 = Enumerable.Range(0, 16 * trainSteps).Select(i => texts[i % texts.Length] + " " + texts[(i * 7 + 3) % texts.Length]).ToArray();
var trainExamples = long64.Select((t, i) => new LabeledExample(t, labels[i % 4])).ToArray();
var reports = new List<StudentTrainingProgress>();
var ckpt = trainer.Train(new StudentTrainingOptions
{
    Mode = StudentTrainingMode.Full, Epochs = 1, BatchSize = 16, MaxLength = 64, Threads = threads, Seed = 1, ProgressEverySteps = 1,
    Device = "cpu",
}, trainExamples, labels, Path.Combine(work, "full"), progress: reports.Add);
var steady = reports.Where(r => r.Phase == StudentTrainingPhase.Training).Skip(2).ToArray(); // first steps warm up allocators
var trainPerSecond = steady.Length == 0 ? double.NaN : steady.Length * 16 / steady.Sum(r => 16 / r.ExamplesPerSecond);
var lengths64 = long64.Select(t => tokenizer.Encode(t, 64).Length).ToArray();
var trainFlopsPerExample = 3 * lengths64.Average(ForwardFlops); // forward + backward ~ 3x forward

// 2. ONNX Runtime, batch 1, natural length.
using var student = OnnxStudent.Load(ckpt.Directory, new OnnxRunOptions { Threads = threads, BatchSize = 64, Log = m => Console.Error.WriteLine(m) });
var sample = texts.Take(300).ToArray();
for (var i = 0; i < 20; i++) student.PredictProbabilities([sample[i]]);
var latencies = new List<double>();
foreach (var t in sample)
{
    var sw = Stopwatch.StartNew();
    student.PredictProbabilities([t]);
    latencies.Add(sw.Elapsed.TotalMilliseconds);
}
latencies.Sort();
double Pct(double p) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(p * latencies.Count) - 1)];

// 3. ONNX Runtime, batch 64 (sorted by length inside PredictProbabilities).
var batchTexts = Enumerable.Range(0, 1024).Select(i => texts[i % texts.Length]).ToArray();
student.PredictProbabilities(batchTexts.Take(128).ToArray());
var swb = Stopwatch.StartNew();
student.PredictProbabilities(batchTexts);
var batchSeconds = swb.Elapsed.TotalSeconds;
var batchPerSecond = batchTexts.Length / batchSeconds;
var usefulFlops = batchTexts.Sum(t => ForwardFlops(tokenizer.Encode(t, student.MaxLength).Length));
var achieved = usefulFlops / batchSeconds;

// 4. This machine's fp32 GEMM rate (libtorch, same thread count): the best of a few shapes.
var gemm = new[] { (1024, 1024, 1024), (2048, 2048, 2048), (4096, 384, 1536), (4096, 1536, 384) }.Max(s => GemmRate(s.Item1, s.Item2, s.Item3));

Directory.Delete(work, true);

var rows = new List<(string, string)>
{
    ("fine-tune, full mode, length 64, batch 16", $"{trainPerSecond:F1} examples/s"),
    ("fine-tune useful FLOP/s (3x forward)", $"{trainPerSecond * trainFlopsPerExample / 1e9:F1} GFLOP/s = {trainPerSecond * trainFlopsPerExample / gemm:F2} of GEMM"),
    ("ORT batch 1, natural length, p50", $"{Pct(0.50):F2} ms"),
    ("ORT batch 1, natural length, p99", $"{Pct(0.99):F2} ms"),
    ("ORT batch 64, length-sorted, throughput", $"{batchPerSecond:F0} sentences/s"),
    ("fp32 GEMM rate (libtorch mm, best shape)", $"{gemm / 1e9:F1} GFLOP/s"),
    ("student useful FLOP/s at batch 64", $"{achieved / 1e9:F1} GFLOP/s"),
    ("ratio to GEMM rate (target >= 0.6)", $"{achieved / gemm:F2}"),
};
Console.WriteLine($"Pgkd.Student benchmark — {threads} threads, ORT provider {student.ExecutionProvider}, {Environment.ProcessorCount} cores visible");
var w = rows.Max(r => r.Item1.Length);
Console.WriteLine($"| {"measure".PadRight(w)} | value");
Console.WriteLine($"|{new string('-', w + 2)}|{new string('-', 40)}");
foreach (var (k, v) in rows) Console.WriteLine($"| {k.PadRight(w)} | {v}");
Console.WriteLine("Useful FLOPs: per real (non-padding) token and layer, 2*4*384^2 (Q,K,V,O) + 2*2*384*1536 (FFN) + 2*2*L*384 (attention); padding is not counted.");
return 0;

// Forward FLOPs of the encoder for one text of L tokens (multiply-add = 2 FLOPs); pooling and head are negligible.
static double ForwardFlops(int l) => MiniLMShape.Layers * (
    2.0 * l * 4 * MiniLMShape.Hidden * MiniLMShape.Hidden
    + 2.0 * l * 2 * MiniLMShape.Hidden * MiniLMShape.Intermediate
    + 2.0 * 2 * l * l * MiniLMShape.Hidden);

static double GemmRate(int m, int k, int n)
{
    using var scope = torch.NewDisposeScope();
    var a = torch.randn(m, k);
    var b = torch.randn(k, n);
    for (var i = 0; i < 3; i++) torch.mm(a, b).Dispose();
    var reps = 0;
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < 1.5 || reps < 3)
    {
        torch.mm(a, b).Dispose();
        reps++;
    }
    return 2.0 * m * k * n * reps / sw.Elapsed.TotalSeconds;
}

static string? FindData()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "PgkdAspire.sln")))
        {
            var d = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "agnews"));
            return File.Exists(Path.Combine(d, "test.jsonl")) ? d : null;
        }
    return null;
}

static string[] LoadTexts(string? dir)
{
    if (dir is not null)
        return File.ReadLines(Path.Combine(dir, "test.jsonl")).Take(2000)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
    string[] built = [
        "Stocks rallied on Wall Street as investors cheered strong earnings from technology companies and lower oil prices.",
        "The striker scored twice in the second half as the home side came from behind to win the league title.",
        "Leaders of the two countries met in Geneva to discuss a ceasefire and the return of refugees to the region.",
        "Researchers unveiled a chip that doubles the battery life of laptops, the company said in a statement on Tuesday.",
    ];
    return Enumerable.Range(0, 400).Select(i => built[i % 4] + (i % 3 == 0 ? " Analysts expect more news next week." : "")).ToArray();
}
