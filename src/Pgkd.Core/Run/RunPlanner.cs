using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Teacher;

namespace Pgkd.Core.Run;

/// <summary>How far a run has got: early-stopping state and teacher spend so far.</summary>
public sealed record RunProgress(EarlyStopping Stopping, long TeacherTokensUsed, decimal TeacherCostUsd, int TeacherRounds)
{
    public static RunProgress Start(RunConfiguration config) => new(EarlyStopping.Start(config.EarlyStoppingOptions), 0, 0m, 0);
}

/// <summary>
/// One evaluated round: round 0 is the student trained on the seed data only; round r ≥ 1 follows
/// the teacher's r-th batch. Report (the selection part) judges the round for early stopping;
/// FeedbackReport (the part the teacher sees) sets the next allocation, and is Report itself when the run
/// has one validation set. Tokens and cost are what this round's teacher calls spent.
/// </summary>
public sealed record RoundOutcome(int Round, ValidationReport Report, long TeacherTokens = 0, decimal TeacherCostUsd = 0m,
    ValidationReport? FeedbackReport = null);

/// <summary>What the run does next.</summary>
public abstract record RunStep
{
    /// <summary>
    /// Ask the teacher for Allocation[c] examples of each label (label-set order), build the prompt
    /// with PromptOptions; its hard negatives were mined when the previous round was evaluated (<see cref="RunPlanner.MiningFor"/>).
    /// </summary>
    public sealed record GenerateRound(int Round, IReadOnlyList<int> Allocation, TeacherPromptOptions PromptOptions,
        AllocationBounds? Bounds = null) : RunStep;

    /// <summary>Stop; the checkpoint of BestRound is the run's result.</summary>
    public sealed record Finish(int BestRound, double BestValue, StopDecision Reason) : RunStep;
}

/// <summary>
/// The pure transition from one round's evaluation to the run's next step. Services store the
/// returned progress and act on the step; replaying the same outcomes gives the same steps.
/// </summary>
public static class RunPlanner
{
    public static (RunProgress Progress, RunStep Step) Next(RunConfiguration config, RunProgress progress, RoundOutcome outcome)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(progress);
        ArgumentNullException.ThrowIfNull(outcome);
        var classes = outcome.Report.PerClass.Count;
        var feedback = outcome.FeedbackReport ?? outcome.Report;
        config.EnsureValid();
        if (outcome.Round != progress.Stopping.LastRound + 1)
            throw new ArgumentException($"Expected the outcome of round {progress.Stopping.LastRound + 1}, got round {outcome.Round}.", nameof(outcome));
        if (outcome.TeacherTokens < 0 || outcome.TeacherCostUsd < 0)
            throw new ArgumentException("Teacher tokens and cost cannot be negative.", nameof(outcome));

        var spent = progress with
        {
            TeacherTokensUsed = progress.TeacherTokensUsed + outcome.TeacherTokens,
            TeacherCostUsd = progress.TeacherCostUsd + outcome.TeacherCostUsd,
            TeacherRounds = progress.TeacherRounds + (outcome.Round > 0 ? 1 : 0),
        };
        var (stopping, decision) = spent.Stopping.Observe(outcome.Round, outcome.Report, BudgetExhausted(config, spent));
        var next = spent with { Stopping = stopping };
        if (decision != StopDecision.Continue)
            return (next, new RunStep.Finish(stopping.BestRound, stopping.BestValue, decision));

        var round = outcome.Round + 1;
        if (config.Strategy == RunStrategy.RandomAugmentation)
            return (next, new RunStep.GenerateRound(round, ClassAllocation.Balanced(config.SamplesPerRound, classes), config.PromptOptions));

        // A floor that cannot fit (many classes, few samples) is lowered rather than failing the run.
        var bounds = config.AllocationBoundsFor(classes);
        var allocation = ClassAllocation.Allocate(config.SamplesPerRound, feedback.F1ByClass, bounds.Floor, config.AllocationSmoothing, bounds.Cap);
        return (next, new RunStep.GenerateRound(round, allocation, config.PromptOptions, bounds));
    }

    /// <summary>
    /// How the evaluation of round <paramref name="evaluatedRound"/> mines hard negatives for the next round's prompt; null when
    /// that prompt shows none (random augmentation, or the ablation without them), so nothing is mined. Decided here
    /// only: the orchestrator carries it in the EvaluateRound command, and the benchmark passes the same value to the same step.
    /// </summary>
    public static HardNegativeOptions? MiningFor(RunConfiguration config, int evaluatedRound)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.PromptOptions.IncludeHardNegatives ? config.HardNegativeOptionsForRound(evaluatedRound + 1) : null;
    }

    /// <summary>
    /// Spent, or the next round would overspend at the average rate of the rounds so far: better to
    /// stop than to start a round the budget cannot finish.
    /// </summary>
    public static bool BudgetExhausted(RunConfiguration config, RunProgress progress)
    {
        if (progress.TeacherTokensUsed >= config.TeacherTokenBudget || progress.TeacherCostUsd >= config.TeacherCostBudgetUsd)
            return true;
        if (progress.TeacherRounds == 0) return false;
        var tokensPerRound = (double)progress.TeacherTokensUsed / progress.TeacherRounds;
        var costPerRound = progress.TeacherCostUsd / progress.TeacherRounds;
        return progress.TeacherTokensUsed + tokensPerRound > config.TeacherTokenBudget
            || progress.TeacherCostUsd + costPerRound > config.TeacherCostBudgetUsd;
    }
}
