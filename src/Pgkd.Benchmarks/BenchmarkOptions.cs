using System.Globalization;

namespace Pgkd.Benchmarks;

/// <summary>
/// The options of <c>./build.sh bench</c>. Sections: quality (strategies on a dataset, the paper's Tables 2/4),
/// speed (student in-process, through the gateway, TorchSharp eager, PyTorch; Table 5), anatomy (where a real
/// round's wall time goes, through the AppHost), serving-memory (the gateway's resident memory per ONNX Runtime memory
/// setting under 32 concurrent clients, each setting in a fresh child process), int8 (the int8 serving graph against
/// fp32: accuracy and throughput), batching (a 64-text request in data order in-process: how it is cut into ONNX Runtime
/// runs, precision and ONNX Runtime settings), engine-load (the serving engine under 32 closed-loop clients in-process:
/// admission, deadline and Retry-After without HTTP), emulator (the teacher emulator's warm-up on a 30,000-text pool).
/// </summary>
public sealed record BenchmarkOptions
{
    public static readonly string[] AllSections = ["quality", "speed", "batching", "anatomy", "serving-memory", "engine-load", "int8", "emulator"];

    public IReadOnlyList<string> Sections { get; init; } = AllSections;

    /// <summary>Dataset folder: labels.txt, seed_train.jsonl, seed_val.jsonl, test.jsonl, and pool.jsonl for the emulator.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Dataset folders of the int8 section (labels.txt, seed_train.jsonl, test.jsonl): AG News and Banking77 by default.</summary>
    public IReadOnlyList<string> Int8DataDirectories { get; init; } = [];

    public int Rounds { get; init; } = 6;

    public int SamplesPerRound { get; init; } = 200;

    /// <summary>Run seeds; the paper-table section reports mean and spread over them.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [1, 2, 3];

    /// <summary>Student modes: head (frozen encoder + MLP head) and full (fine-tune everything).</summary>
    public IReadOnlyList<string> Modes { get; init; } = ["head", "full"];

    /// <summary>Strategy names (see <c>Quality.Strategies</c>); empty means all.</summary>
    public IReadOnlyList<string> Strategies { get; init; } = [];

    public int Threads { get; init; } = 2;

    /// <summary>
    /// Teacher rounds of the live runs that speed and anatomy time through the AppHost. 2 keeps the section short;
    /// 6 with <c>--modes full</c> times a whole AG News run (6 x 200, full fine-tune) end to end.
    /// </summary>
    public int AnatomyRounds { get; init; } = 2;

    /// <summary>Measured seconds per serving-memory child, after its warm-up (6 configurations x repetitions children in all).</summary>
    public int ServingSeconds { get; init; } = 50;

    /// <summary>Repetitions of every serving-memory configuration, taken in turns.</summary>
    public int ServingRepeats { get; init; } = 2;

    /// <summary>Measure nothing: rewrite the quality fragment from its stored raw results and compose results.md.</summary>
    public bool ReportOnly { get; init; }

    /// <summary>What early stopping watches on the selection data (the run configuration's default: accuracy).</summary>
    public Pgkd.Core.Run.StoppingMetric StoppingMetric { get; init; } = Pgkd.Core.Run.RunConfiguration.Default.StoppingMetric;

    /// <summary>Epochs per round in full mode (head mode trains its MLP for more; see Quality.QualityBenchmark).</summary>
    public int FullEpochsPerRound { get; init; } = 1;

    /// <summary>The student's head start, steps per class, stopping within a round and batches for the quality section (null: the product's defaults, <c>StudentSettings</c>).</summary>
    public string? HeadStart { get; init; }
    public int? StepsPerClass { get; init; }
    public int? ValidationPatience { get; init; }
    public int? MaxEpochs { get; init; }
    public int? SeedEpochs { get; init; }
    public bool? ClassBalancedBatches { get; init; }
    /// <summary>The share of the validation data that judges rounds, apart from what the teacher and stopping within a round see (null: each strategy's own).</summary>
    public double? SelectionShare { get; init; }

    /// <summary>The student settings every quality run starts from; each run sets its mode and full-mode epochs.</summary>
    public Pgkd.Storage.StudentSettings Student => new()
    {
        HeadStart = HeadStart, StepsPerClass = StepsPerClass, ValidationPatience = ValidationPatience, MaxEpochs = MaxEpochs, SeedEpochs = SeedEpochs,
        ClassBalancedBatches = ClassBalancedBatches,
    };

    /// <summary>A real teacher as a connection string (Endpoint=...;Key=...;Deployment=...); absent: the emulator.</summary>
    public string? TeacherConnectionString { get; init; }

    /// <summary>Where docs/results.md and its plots go (the repository's docs folder by default).</summary>
    public required string OutputDirectory { get; init; }

    public const string Usage = """
        Usage: ./build.sh bench [options]      (or: dotnet run -c Release --project src/Pgkd.Benchmarks -- [options])
          --sections quality,speed,batching,anatomy,serving-memory,engine-load,int8,emulator
                                             which parts to run (default: all); other parts keep their last results
          --data DIR                         dataset folder (default ../shared/data/agnews)
          --int8-data DIR,DIR                dataset folders of the int8 section (default ../shared/data/agnews and
                                             ../shared/data/banking77); one seed-only student per folder and seed
          --rounds N                         teacher rounds after the seed-only round (default 6)
          --samples N                        teacher samples per round (default 200)
          --seeds 1,2,3                      run seeds (default 1,2,3)
          --modes head,full                  student modes (default head,full)
          --strategies a,b                   strategies to run (default all; see docs/results.md)
          --full-epochs N                    epochs per round in full mode (default 1)
          --seed-epochs N                    epochs of round 0, the seed data alone (default: the product's, 3 in full
                                             mode, 30 in head mode)
          --head-start centroids|random      how a fresh student head starts (default: the product's)
          --steps-per-class N                optimizer steps a round takes at least, per class (default: the product's)
          --validation-patience N            stop a round after N epochs without a lower validation loss, keeping its
                                             best epoch (default: the product's; 0 = no stopping within a round)
          --max-epochs N                     with --validation-patience: the most epochs a round trains
          --batches shuffled|balanced        every example once per epoch, or every class an equal share
          --selection-share X                split the validation data for every strategy: X judges rounds, the rest
                                             goes to the teacher and to stopping within a round (default: the strategy's)
          --threads N                        CPU threads for training and inference (default 2)
          --anatomy-rounds N                 teacher rounds of the live runs through the AppHost (default 2; at most
                                             --rounds); 6 with --modes full times a whole AG News run end to end
          --serving-seconds N                serving-memory: measured seconds per configuration after 10 s of warm-up
                                             (default 50; 6 configurations x --serving-repeats children, ~13 min)
          --serving-repeats N                serving-memory: repetitions of every configuration, in turns (default 2)
          --stopping-metric M                Accuracy (the product's default), ValidationLoss (the paper's; the
                                             published tables), MacroF1 or WeightedF1
          --teacher "Endpoint=..;Key=..;Deployment=.."   a real OpenAI-compatible teacher instead of the emulator
          --out DIR                          output folder for results.md and plots (default docs)
          --report-only                      measure nothing: rewrite results.md from the stored results
        """;

    public static BenchmarkOptions Parse(IReadOnlyList<string> args, string repositoryRoot)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (name is "-h" or "--help") throw new BenchmarkUsageException(null);
            if (name == "--report-only") { values[name[2..]] = "true"; continue; }
            if (!name.StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Count)
                throw new BenchmarkUsageException($"expected --option value, got \"{name}\"");
            values[name[2..]] = args[++i];
        }
        string? Take(string name) => values.Remove(name, out var v) ? v : null;
        int Int(string name, int fallback, int min, int max)
        {
            var text = Take(name);
            if (text is null) return fallback;
            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
                throw new BenchmarkUsageException($"--{name} must be a whole number from {min} to {max}, was \"{text}\"");
            return v;
        }
        IReadOnlyList<string>? List(string name) =>
            Take(name)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        var sections = List("sections") ?? AllSections;
        foreach (var s in sections)
            if (!AllSections.Contains(s)) throw new BenchmarkUsageException($"--sections: unknown section \"{s}\" (known: {string.Join(", ", AllSections)})");
        var modes = List("modes") ?? ["head", "full"];
        foreach (var m in modes)
            if (m is not ("head" or "full")) throw new BenchmarkUsageException($"--modes: unknown mode \"{m}\" (known: head, full)");
        var seeds = (List("seeds") ?? ["1", "2", "3"]).Select(s => int.TryParse(s, CultureInfo.InvariantCulture, out var v)
            ? v : throw new BenchmarkUsageException($"--seeds: \"{s}\" is not a whole number")).ToArray();
        if (seeds.Length == 0) throw new BenchmarkUsageException("--seeds: give at least one seed");
        var options = new BenchmarkOptions
        {
            Sections = sections,
            DataDirectory = Path.GetFullPath(Take("data") ?? Path.Combine(repositoryRoot, "..", "shared", "data", "agnews")),
            Int8DataDirectories = (List("int8-data") ?? [Path.Combine(repositoryRoot, "..", "shared", "data", "agnews"), Path.Combine(repositoryRoot, "..", "shared", "data", "banking77")])
                .Select(Path.GetFullPath).ToArray(),
            Rounds = Int("rounds", 6, 1, 100),
            SamplesPerRound = Int("samples", 200, 1, 100_000),
            Seeds = seeds,
            Modes = modes,
            Strategies = List("strategies") ?? [],
            FullEpochsPerRound = Int("full-epochs", 1, 1, 50),
            HeadStart = Take("head-start") is { } start
                ? start is Pgkd.Storage.StudentSettings.CentroidsHeadStart or Pgkd.Storage.StudentSettings.RandomHeadStart ? start
                    : throw new BenchmarkUsageException($"--head-start: \"{start}\" is neither {Pgkd.Storage.StudentSettings.CentroidsHeadStart} nor {Pgkd.Storage.StudentSettings.RandomHeadStart}")
                : null,
            StepsPerClass = values.ContainsKey("steps-per-class") ? Int("steps-per-class", 0, 0, 1000) : null,
            // Patience 0 is the default (no stopping within a round), so it stores as the default does.
            ValidationPatience = values.ContainsKey("validation-patience") && Int("validation-patience", 0, 0, 50) is var patience and > 0 ? patience : null,
            MaxEpochs = values.ContainsKey("max-epochs") ? Int("max-epochs", 1, 1, 200) : null,
            SeedEpochs = values.ContainsKey("seed-epochs") ? Int("seed-epochs", 1, 1, 200) : null,
            SelectionShare = Take("selection-share") is { } share
                ? double.TryParse(share, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && x is >= 0 and < 1 ? x
                    : throw new BenchmarkUsageException($"--selection-share must be a number from 0 up to (not including) 1, was \"{share}\"")
                : null,
            ClassBalancedBatches = Take("batches") switch
            {
                null => null,
                "shuffled" => false,
                "balanced" => true,
                var other => throw new BenchmarkUsageException($"--batches: \"{other}\" is neither shuffled nor balanced"),
            },
            Threads = Int("threads", 2, 1, 256),
            AnatomyRounds = Int("anatomy-rounds", 2, 1, 100),
            ServingSeconds = Int("serving-seconds", 50, 1, 3600),
            ServingRepeats = Int("serving-repeats", 2, 1, 20),
            StoppingMetric = Take("stopping-metric") is { } metric
                ? Enum.TryParse<Pgkd.Core.Run.StoppingMetric>(metric, ignoreCase: true, out var parsed) && Enum.IsDefined(parsed) && !int.TryParse(metric, out _)
                    ? parsed : throw new BenchmarkUsageException($"--stopping-metric: unknown metric \"{metric}\" (known: {string.Join(", ", Enum.GetNames<Pgkd.Core.Run.StoppingMetric>())})")
                : Pgkd.Core.Run.RunConfiguration.Default.StoppingMetric,
            TeacherConnectionString = Take("teacher"),
            OutputDirectory = Path.GetFullPath(Take("out") ?? Path.Combine(repositoryRoot, "docs")),
            ReportOnly = Take("report-only") is not null,
        };
        if (values.Count > 0) throw new BenchmarkUsageException($"unknown option --{values.Keys.First()}");
        if (options.MaxEpochs is not null && options.ValidationPatience is null)
            throw new BenchmarkUsageException("--max-epochs caps a round that stops on validation loss: give --validation-patience too");
        if (!File.Exists(Path.Combine(options.DataDirectory, "seed_train.jsonl")))
            throw new BenchmarkUsageException($"--data: {options.DataDirectory} has no seed_train.jsonl (it needs labels.txt, seed_train.jsonl, seed_val.jsonl, test.jsonl, pool.jsonl)");
        if (sections.Contains("int8"))
            foreach (var dir in options.Int8DataDirectories)
                if (!File.Exists(Path.Combine(dir, "seed_train.jsonl")) || !File.Exists(Path.Combine(dir, "test.jsonl")))
                    throw new BenchmarkUsageException($"--int8-data: {dir} lacks seed_train.jsonl or test.jsonl (it needs labels.txt, seed_train.jsonl, seed_val.jsonl, test.jsonl)");
        return options;
    }
}

public sealed class BenchmarkUsageException(string? problem) : Exception(problem ?? "help")
{
    public string? Problem { get; } = problem;
}
