using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;

namespace Pgkd.Storage;

/// <summary>
/// What the evaluator stores for one round and split (<see cref="RunBlobLayout.Evaluation"/>): the report, and for
/// validation the hard negatives and prediction samples mined for the next round's prompt. When the run splits its
/// validation data, Report and Guidance are the feedback part's and SelectionReport is the selection part's.
/// </summary>
public sealed record RoundEvaluation(int Round, string Split, string CheckpointFolder, ValidationReport Report,
    HardNegativeSelection Guidance, ValidationReport? SelectionReport = null)
{
    /// <summary>The report that judges the round: early stopping and the best round.</summary>
    public ValidationReport JudgeReport => SelectionReport ?? Report;

    /// <summary>What the planner is told of this round: the judge's report, the feedback report, and what the round's teacher cost.</summary>
    public RoundOutcome Outcome(long teacherTokens, decimal teacherCostUsd) => new(Round, JudgeReport, teacherTokens, teacherCostUsd, Report);
}

/// <summary>
/// What the orchestrator decided the teacher is asked for in a round (<see cref="RunBlobLayout.Guidance"/>): the
/// per-class allocation in label order, the prompt switches, the evaluation whose weaknesses it targets, and the floor and
/// cap the allocation kept to (null for random augmentation, and in rounds planned before they existed).
/// </summary>
public sealed record RoundGuidance(int Round, IReadOnlyList<int> Allocation, TeacherPromptOptions PromptOptions,
    bool RandomAugmentation, string EvaluationBlob, AllocationBounds? Bounds = null);
