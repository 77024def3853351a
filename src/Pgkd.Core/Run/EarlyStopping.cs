using Pgkd.Core.Metrics;

namespace Pgkd.Core.Run;

/// <summary>What early stopping watches. Loss is minimised; the others are maximised.</summary>
public enum StoppingMetric
{
    ValidationLoss,
    MacroF1,
    Accuracy,
    WeightedF1,
}

/// <summary>The verdict after a round.</summary>
public enum StopDecision
{
    Continue,
    /// <summary>No improvement beyond MinDelta for Patience rounds in a row.</summary>
    StopPatienceExhausted,
    /// <summary>The last allowed round has been evaluated.</summary>
    StopMaxRounds,
    /// <summary>The teacher token or cost budget cannot pay for another round.</summary>
    StopBudget,
}

public sealed record EarlyStoppingOptions
{
    public int Patience { get; init; } = 5;

    /// <summary>An improvement must beat the best value by more than this.</summary>
    public double MinDelta { get; init; }

    public StoppingMetric Metric { get; init; } = StoppingMetric.Accuracy;

    /// <summary>Rounds of teacher generation; round 0 (seed training) is not counted.</summary>
    public int MaxRounds { get; init; } = 10;

    public bool Minimize => Metric == StoppingMetric.ValidationLoss;

    public double ValueOf(ValidationReport report) => Metric switch
    {
        StoppingMetric.ValidationLoss => report.ValidationLoss,
        StoppingMetric.MacroF1 => report.MacroF1,
        StoppingMetric.Accuracy => report.Accuracy,
        StoppingMetric.WeightedF1 => report.WeightedF1,
        _ => throw new ArgumentOutOfRangeException(nameof(Metric), Metric, null),
    };
}

/// <summary>
/// Early stopping as an immutable value: each <see cref="Observe(int, double, bool, double)"/> returns the
/// next state and the decision, so the run's state can be stored and replayed. BestRound is the
/// checkpoint to keep. Round 0 is the student trained on the seed data only.
/// A maximised metric ties often on a small validation set (200 texts: accuracy moves in steps of 0.5 points, and
/// saturates at 100% on easy data); a tie goes to the round with the lower validation loss (<see cref="BestTieBreak"/>).
/// </summary>
public sealed record EarlyStopping(
    EarlyStoppingOptions Options,
    int BestRound,
    double BestValue,
    int RoundsWithoutImprovement,
    int LastRound,
    double BestTieBreak = double.NaN)
{
    // Two metric values closer than this are the same count of correct texts.
    private const double TieTolerance = 1e-9;

    public static EarlyStopping Start(EarlyStoppingOptions? options = null) =>
        new(options ?? new EarlyStoppingOptions(), -1, double.NaN, 0, -1);

    public bool HasBest => BestRound >= 0;

    public (EarlyStopping State, StopDecision Decision) Observe(int round, ValidationReport report, bool budgetExhausted = false) =>
        Observe(round, Options.ValueOf(report), budgetExhausted, report.ValidationLoss);

    /// <param name="tieBreakLoss">The round's validation loss; with a maximised metric it decides a tie (lower wins).</param>
    public (EarlyStopping State, StopDecision Decision) Observe(int round, double value, bool budgetExhausted = false,
        double tieBreakLoss = double.NaN)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(round);
        if (round <= LastRound)
            throw new ArgumentException($"Round {round} was already observed (last round {LastRound}).", nameof(round));

        // NaN (a diverged model) never counts as an improvement.
        var improved = !double.IsNaN(value) && (!HasBest || IsBetter(value, BestValue) || WinsTie(value, tieBreakLoss));
        var next = improved
            ? this with { BestRound = round, BestValue = value, BestTieBreak = tieBreakLoss, RoundsWithoutImprovement = 0, LastRound = round }
            : this with { RoundsWithoutImprovement = RoundsWithoutImprovement + 1, LastRound = round };

        var decision =
            budgetExhausted ? StopDecision.StopBudget
            : next.RoundsWithoutImprovement >= Options.Patience ? StopDecision.StopPatienceExhausted
            : round >= Options.MaxRounds ? StopDecision.StopMaxRounds
            : StopDecision.Continue;
        return (next, decision);
    }

    private bool IsBetter(double value, double best) =>
        Options.Minimize ? value < best - Options.MinDelta : value > best + Options.MinDelta;

    private bool WinsTie(double value, double tieBreakLoss) =>
        !Options.Minimize && Math.Abs(value - BestValue) <= TieTolerance && !double.IsNaN(tieBreakLoss)
        && (double.IsNaN(BestTieBreak) || tieBreakLoss < BestTieBreak);
}
