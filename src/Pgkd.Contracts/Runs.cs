namespace Pgkd.Contracts;

// The messages of a distillation run. Commands (imperative: StartRun, CancelRun, GenerateRound, TrainRound,
// EvaluateRound) go from the gateway or the orchestrator to one service; events (past tense: RoundGenerated,
// RoundTrained, RoundEvaluated, RunCompleted) report what a service did. Every message names the run, the round and
// an idempotency key, and points at blobs: datasets and weights never travel inside a message. Keys are
// deterministic (see IdempotencyKeys): a step's output is stored marked with its command's key, so a redelivered or
// retried command is recognised as one already carried out and never done twice.

/// <summary>Which data an evaluation scores: validation inside the loop, test once at the end.</summary>
public enum EvaluationSplit
{
    Validation,
    Test,
}

/// <summary>The gateway accepted a run and stored its manifest and seed data: the orchestrator starts round 0.</summary>
public sealed record StartRun(Guid RunId, string IdempotencyKey, Uri ManifestUri, DateTimeOffset StartedAt);

/// <summary>Ask the generator for round <paramref name="Round"/>'s teacher samples, guided by the previous evaluation.</summary>
public sealed record GenerateRound(Guid RunId, int Round, string IdempotencyKey, Uri ManifestUri, Uri GuidanceUri, Uri ShardUri);

/// <summary>
/// The accepted samples are stored at <paramref name="ShardUri"/>; the tallies feed the run status and report:
/// samples rejected by reason, and how the teacher behaved: requests sent (repairs included), attempts retried by
/// cause (<c>429</c>, <c>5xx</c>, <c>timeout</c>, <c>network</c>), malformed replies repaired, replies that stayed
/// unusable, and why generation stopped early (the budget), if it did. Then how a real deployment answered: the
/// response mode that served (<c>json_schema</c>, <c>json_object</c>, <c>text</c>), prompts refused and replies withheld
/// by the content filter, replies cut off at the output limit and the samples lost with them, the samples per request
/// in effect at the round's end, prompt tokens served from the provider's cache and what they saved, and the API the
/// round went through (<c>chat</c>, or <c>batch</c> for the Batch API).
/// </summary>
public sealed record RoundGenerated(Guid RunId, int Round, string IdempotencyKey, Uri ShardUri,
    int Requested, int Accepted, IReadOnlyDictionary<string, int> RejectedByReason,
    long PromptTokens, long CompletionTokens, decimal CostUsd, double TeacherSeconds,
    int TeacherCalls = 0, IReadOnlyDictionary<string, int>? TeacherRetriesByCause = null, int RepairedReplies = 0, int UnusableReplies = 0,
    string? GenerationStopReason = null,
    string? ResponseMode = null, int PromptsFiltered = 0, int RepliesFiltered = 0, int TruncatedReplies = 0, int SamplesLostToTruncation = 0,
    int? SamplesPerRequest = null, long CachedPromptTokens = 0, decimal CachedSavingsUsd = 0m, string? TeacherApi = null);

/// <summary>
/// Train on <paramref name="TrainingDataUris"/> (seed + every shard so far), continuing from
/// <paramref name="StartFromCheckpointUri"/> when set (full mode from round 1; null: a fresh student or head).
/// </summary>
public sealed record TrainRound(Guid RunId, int Round, string IdempotencyKey, Uri ManifestUri,
    IReadOnlyList<Uri> TrainingDataUris, Uri? StartFromCheckpointUri, Uri CheckpointUri);

/// <summary>The checkpoint folder (full mode: model.onnx and state; head mode: head.onnx; metadata) is complete at <paramref name="CheckpointUri"/>.</summary>
public sealed record RoundTrained(Guid RunId, int Round, string IdempotencyKey, Uri CheckpointUri,
    int TrainingExamples, double ExamplesPerSecond, double TrainingLoss, double TrainingSeconds);

/// <summary>
/// Score a checkpoint on one split; for validation also mine hard negatives into the evaluation blob as
/// <paramref name="Mining"/> says (the planner's decision, RunPlanner.MiningFor; null: the next prompt shows none, mine nothing).
/// </summary>
public sealed record EvaluateRound(Guid RunId, int Round, string IdempotencyKey, Uri ManifestUri,
    Uri CheckpointUri, EvaluationSplit Split, Uri DataUri, Uri EvaluationUri, Pgkd.Core.Guidance.HardNegativeOptions? Mining = null);

/// <summary>The full report (per class, confusion matrix, hard negatives) is at <paramref name="EvaluationUri"/>.</summary>
public sealed record RoundEvaluated(Guid RunId, int Round, string IdempotencyKey, EvaluationSplit Split, Uri EvaluationUri,
    double Loss, double Accuracy, double MacroF1, double EvaluationSeconds,
    double? SelectionLoss = null, double? SelectionAccuracy = null, double? SelectionMacroF1 = null);

/// <summary>A user asked to stop the run; the round in flight finishes, nothing new starts.</summary>
public sealed record CancelRun(Guid RunId, string IdempotencyKey, string Reason);

/// <summary>The run's best checkpoint is final: the gateway serves it (Models/ModelSwapper.cs).</summary>
public sealed record RunCompleted(Guid RunId, string IdempotencyKey, int BestRound, Uri BestCheckpointUri, Uri ReportUri);

/// <summary>Deterministic keys: one per (run, round, step), so a retry carries the key of the step it repeats.</summary>
public static class IdempotencyKeys
{
    public static string For(Guid runId, string step, int? round = null, EvaluationSplit? split = null) =>
        $"{runId:N}/{step}" + (round is { } r ? $"/round-{r}" : "") + (split is { } s ? $"/{s.ToString().ToLowerInvariant()}" : "");
}
