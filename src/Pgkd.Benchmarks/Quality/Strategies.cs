using Pgkd.Core.Guidance;
using Pgkd.Core.Run;

namespace Pgkd.Benchmarks.Quality;

/// <summary>One row of the quality table: how a run is configured, in the paper's vocabulary.</summary>
/// <paramref name="Configure"/> takes the product's configuration and the dataset's number of classes.
public sealed record Strategy(string Name, string Description, bool SeedOnly, Func<RunConfiguration, int, RunConfiguration> Configure);

/// <summary>
/// The strategies compared (the paper's Table 2 baselines and Table 4 ablations, plus issue 11's split). All teacher
/// strategies ask for the same number of samples per round, so they are compared at equal teacher budget.
/// </summary>
public static class Strategies
{
    /// <summary>The paper's setting: one validation set gives the teacher its report and hard negatives and judges rounds.</summary>
    public const string Pgkd = "pgkd";

    public const string Random = "random";

    public static readonly IReadOnlyList<Strategy> All =
    [
        // Pinned to the split the published tables were measured with (the product's default now follows the validation size).
        new("seed-only", "the student trained on the seed data only (round 0)", true, (c, _) => c with { SelectionShare = 0.5 }),
        new(Pgkd, "PGKD as in the paper: validation report + hard negatives; one validation set (feedback and selection)", false,
            (c, _) => c with { SelectionShare = 0 }),
        new("pgkd-capped", "PGKD with each class asked for at most 3 even shares a round (`capPerClass`, issue 20.4); one validation set", false,
            (c, k) => c with { SelectionShare = 0, CapPerClass = Capped(c, k) }),
        new("pgkd-train-negatives", "`pgkd-capped` with hard negatives mined from the training data (seed and teacher), as the public PGKD code does", false,
            (c, k) => c with { SelectionShare = 0, CapPerClass = Capped(c, k), HardNegatives = c.HardNegatives with { Source = HardNegativeSource.Training } }),
        new("pgkd-both-negatives", "`pgkd-capped` with hard negatives mined from validation and training data together", false,
            (c, k) => c with { SelectionShare = 0, CapPerClass = Capped(c, k), HardNegatives = c.HardNegatives with { Source = HardNegativeSource.Both } }),
        new("pgkd-threshold-0.2", "PGKD with hard negatives from a confidence of 0.2 (default 0.5), for many classes, where few mistakes reach 0.5; one validation set", false,
            (c, _) => c with { SelectionShare = 0, HardNegatives = c.HardNegatives with { Threshold = 0.2 } }),
        new("pgkd-threshold-0", "PGKD with the most confident mistakes as hard negatives, whatever their confidence (top 16); one validation set", false,
            (c, _) => c with { SelectionShare = 0, HardNegatives = c.HardNegatives with { Threshold = 0 } }),
        new("pgkd-split", "PGKD with the validation data split 50/50: the feedback part goes to the teacher, the selection part judges rounds", false,
            (c, _) => c with { SelectionShare = 0.5 }),
        new("pgkd-split-capped", "`pgkd-split` with the cap of `pgkd-capped`: its selection part, which the teacher never sees, judges the cap", false,
            (c, k) => c with { SelectionShare = 0.5, CapPerClass = Capped(c, k) }),
        new("no-report", "PGKD without the validation report (hard negatives only); one validation set", false,
            (c, _) => c with { SelectionShare = 0, IncludeValidationReport = false }),
        new("no-hard-negatives", "PGKD without hard negatives (validation report only); one validation set", false,
            (c, _) => c with { SelectionShare = 0, IncludeHardNegatives = false }),
        new(Random, "random augmentation: balanced requests with no guidance, same samples per round; one validation set", false,
            (c, _) => c with { SelectionShare = 0, Strategy = RunStrategy.RandomAugmentation }),
    ];

    /// <summary>Three even shares of a round's samples: the cap measured in issue 20.4.</summary>
    private static int Capped(RunConfiguration c, int classes) => (int)Math.Ceiling(3.0 * c.SamplesPerRound / classes);

    public static IReadOnlyList<Strategy> Select(IReadOnlyList<string> names)
    {
        if (names.Count == 0) return All;
        return names.Select(n => All.FirstOrDefault(s => s.Name == n)
            ?? throw new BenchmarkUsageException($"--strategies: unknown strategy \"{n}\" (known: {string.Join(", ", All.Select(s => s.Name))})")).ToList();
    }
}
