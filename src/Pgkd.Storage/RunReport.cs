using Pgkd.Core.Metrics;

namespace Pgkd.Storage;

/// <summary>A finished run in one document (<see cref="RunBlobLayout.Report"/>): per-round figures, the best round, test scores, cost.</summary>
public sealed record RunReport(
    Guid RunId,
    RunStatus Status,
    IReadOnlyList<string> Labels,
    IReadOnlyList<RoundRecord> Rounds,
    int? BestRound,
    string? StopReason,
    ValidationReport? Test,
    long TeacherTokens,
    decimal TeacherCostUsd,
    DateTimeOffset CreatedAt,
    DateTimeOffset FinishedAt,
    double SelectionShare = 0,
    int? FeedbackExamples = null,
    int? SelectionExamples = null,
    long CachedPromptTokens = 0,
    decimal CachedSavingsUsd = 0m,
    string? Code = null)
{
    public static RunReport From(RunManifest manifest) => new(
        manifest.RunId,
        manifest.IsFinished ? manifest.Status : RunStatus.Completed,
        manifest.Labels.Select(l => l.Name).ToList(),
        manifest.Rounds,
        manifest.BestRound,
        manifest.StopReason,
        manifest.TestReport,
        manifest.TeacherTokens,
        manifest.TeacherCostUsd,
        manifest.CreatedAt,
        manifest.UpdatedAt,
        manifest.Configuration.SelectionShare,
        manifest.FeedbackData.Count,
        manifest.SelectionValidation?.Count,
        manifest.CachedPromptTokens,
        manifest.CachedSavingsUsd,
        manifest.Code);
}
