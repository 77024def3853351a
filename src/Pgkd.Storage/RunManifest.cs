using Pgkd.Core.Data;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;

namespace Pgkd.Storage;

public enum RunStatus
{
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// <summary>The events of a run, in the order they come, for recognising one that arrives after its answer.</summary>
public enum RunProgressMark
{
    Started,
    Generated,
    Trained,
    Evaluated,
    TestScored,
}

/// <summary>A stored dataset: its blob, how many examples, and the content hash that identifies this version.</summary>
public sealed record StoredDataset(string BlobName, int Count, string ContentHash);

/// <summary>What one round produced, filled in step by step as the generator, trainer and evaluator report back.</summary>
public sealed record RoundRecord(int Round)
{
    public string? ShardBlob { get; init; }
    public int Requested { get; init; }
    public int Accepted { get; init; }
    public IReadOnlyDictionary<string, int> RejectedByReason { get; init; } = new Dictionary<string, int>();
    public long TeacherTokens { get; init; }
    /// <summary>The prompt and completion parts of <see cref="TeacherTokens"/>, to hold against the run's forecast.</summary>
    public long TeacherPromptTokens { get; init; }
    public long TeacherCompletionTokens { get; init; }
    public decimal TeacherCostUsd { get; init; }
    /// <summary>Teacher requests of the round (repair turns included), and attempts that failed and were retried, by cause: 429, 5xx, timeout, network.</summary>
    public int TeacherCalls { get; init; }
    public IReadOnlyDictionary<string, int> TeacherRetriesByCause { get; init; } = new Dictionary<string, int>();
    /// <summary>Teacher replies that did not parse and were fixed by the one repair turn, and those that stayed unusable (their samples lost).</summary>
    public int RepairedReplies { get; init; }
    public int UnusableReplies { get; init; }
    /// <summary>Why the round got fewer teacher requests than planned (the budget), if it did.</summary>
    public string? GenerationStopReason { get; init; }
    /// <summary>How the teacher was asked for JSON in this round: <c>json_schema</c>, <c>json_object</c> or <c>text</c>.</summary>
    public string? ResponseMode { get; init; }
    /// <summary>Prompts the teacher's content filter refused (400 content_filter) and replies it withheld (finish_reason content_filter).</summary>
    public int PromptsFiltered { get; init; }
    public int RepliesFiltered { get; init; }
    /// <summary>Replies cut off at the output limit (finish_reason length), the samples lost with them, and the samples per request after.</summary>
    public int TruncatedReplies { get; init; }
    public int SamplesLostToTruncation { get; init; }
    public int? SamplesPerRequest { get; init; }
    /// <summary>Prompt tokens the provider served from its prompt cache (part of TeacherTokens), and what they saved.</summary>
    public long CachedPromptTokens { get; init; }
    public decimal CachedSavingsUsd { get; init; }
    /// <summary><c>chat</c> (one request per batch of samples) or <c>batch</c> (the round through the Batch API).</summary>
    public string? TeacherApi { get; init; }
    /// <summary>Why the teacher gave this round nothing although it answered (no samples, or only unknown labels), and the fix; null otherwise.</summary>
    public TeacherShortfall? TeacherShortfall { get; init; }
    public string? CheckpointFolder { get; init; }
    public double? ExamplesPerSecond { get; init; }
    public double? ValidationLoss { get; init; }
    public double? Accuracy { get; init; }
    public double? MacroF1 { get; init; }
    /// <summary>The selection part's figures (the judge of rounds) when the run splits its validation data.</summary>
    public double? SelectionLoss { get; init; }
    public double? SelectionAccuracy { get; init; }
    public double? SelectionMacroF1 { get; init; }
}

/// <summary>
/// A run's durable state: the one document that says where a run stands, so any service can die and the run goes
/// on from here. Stored as JSON at <see cref="RunBlobLayout.Manifest"/> and changed only through
/// <see cref="RunStore.UpdateManifestAsync"/> (read, change, write if the ETag still matches).
/// </summary>
public sealed record RunManifest
{
    public required Guid RunId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>The build that created the run (<see cref="CodeVersion"/>); each step output names its own in blob metadata.</summary>
    public string? Code { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public RunStatus Status { get; init; } = RunStatus.Running;
    public required IReadOnlyList<LabelDefinition> Labels { get; init; }
    /// <summary>What the classifier does, in a sentence: the teacher's task statement.</summary>
    public string TaskDescription { get; init; } = DefaultTaskDescription;
    public const string DefaultTaskDescription = "Classify each text into exactly one of the labels.";
    public required RunConfiguration Configuration { get; init; }
    public StudentSettings Student { get; init; } = new();
    public required StoredDataset SeedTrain { get; init; }
    public required StoredDataset SeedValidation { get; init; }
    /// <summary>The feedback and selection parts of SeedValidation; both null when the run uses one validation set.</summary>
    public StoredDataset? FeedbackValidation { get; init; }
    public StoredDataset? SelectionValidation { get; init; }
    /// <summary>The validation data the teacher's report and hard negatives come from.</summary>
    public StoredDataset FeedbackData => FeedbackValidation ?? SeedValidation;
    public StoredDataset? Test { get; init; }
    /// <summary>
    /// The run's own pool of labeled texts for the local teacher emulator (<see cref="RunBlobLayout.Pool"/>), without the
    /// texts of its seed, validation and test data; null: the emulator's default pool. A real teacher ignores it.
    /// </summary>
    public StoredDataset? Pool { get; init; }
    public IReadOnlyList<RoundRecord> Rounds { get; init; } = [];

    /// <summary>What round <paramref name="round"/> trains on, in order: the seed data, then every shard stored so far up to that round.</summary>
    public IEnumerable<string> TrainingBlobs(int round) =>
        Rounds.Where(r => r.Round <= round && r.ShardBlob is not null).Select(r => r.ShardBlob!).Prepend(SeedTrain.BlobName);
    public int? BestRound { get; init; }
    /// <summary>Why the run stopped (patience, max rounds, budget), or why it failed or was cancelled.</summary>
    public string? StopReason { get; init; }
    public string? FailureReason { get; init; }
    public bool CancelRequested { get; init; }
    /// <summary>The best checkpoint scored once on the test set, after the loop; null without test data.</summary>
    public ValidationReport? TestReport { get; init; }

    /// <summary>The most the run could cost, forecast when it was submitted (<c>POST /v1/runs?dryRun=true</c> shows the same).</summary>
    public CostForecast? Forecast { get; init; }

    public long TeacherTokens => Rounds.Sum(r => r.TeacherTokens);
    public decimal TeacherCostUsd => Rounds.Sum(r => r.TeacherCostUsd);
    /// <summary>Run totals of the rounds' teacher figures: retries by cause, samples rejected by reason, repaired and unusable replies.</summary>
    public IReadOnlyDictionary<string, int> TeacherRetriesByCause => Total(r => r.TeacherRetriesByCause);
    public IReadOnlyDictionary<string, int> RejectedByReason => Total(r => r.RejectedByReason);
    public int RepairedReplies => Rounds.Sum(r => r.RepairedReplies);
    public int UnusableReplies => Rounds.Sum(r => r.UnusableReplies);
    public int PromptsFiltered => Rounds.Sum(r => r.PromptsFiltered);
    public int RepliesFiltered => Rounds.Sum(r => r.RepliesFiltered);
    public int TruncatedReplies => Rounds.Sum(r => r.TruncatedReplies);
    public int SamplesLostToTruncation => Rounds.Sum(r => r.SamplesLostToTruncation);
    public long CachedPromptTokens => Rounds.Sum(r => r.CachedPromptTokens);
    public decimal CachedSavingsUsd => Rounds.Sum(r => r.CachedSavingsUsd);
    public bool IsFinished => Status != RunStatus.Running;

    /// <summary>
    /// Which data and figure the best round was chosen on, in words, for the CLI and the report: a split run is judged
    /// on its selection part, whose figures the per-round accuracy (the feedback part's) does not show. Null before a
    /// best round exists.
    /// </summary>
    public string? BestRoundChosenOn
    {
        get
        {
            if (BestRound is not { } best) return null;
            var round = Round(best);
            var byLoss = Configuration.StoppingMetric == StoppingMetric.ValidationLoss;
            var metric = byLoss ? "validation loss" : "accuracy";
            static string Format(double? value, bool loss) => value is not { } v ? "–"
                : loss ? v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)
                : (v * 100).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "%";
            return SelectionValidation is { } selection
                ? $"best round {best} chosen on {metric} of the selection part ({selection.Count} texts): " +
                  $"{Format(byLoss ? round.SelectionLoss : round.SelectionAccuracy, byLoss)}; per-round accuracy and macro-F1 are the feedback part's ({FeedbackData.Count} texts)"
                : $"best round {best} chosen on {metric} of the whole validation set ({SeedValidation.Count} texts): " +
                  $"{Format(byLoss ? round.ValidationLoss : round.Accuracy, byLoss)}";
        }
    }

    /// <summary>Adds or replaces the record of one round, keeping rounds in order.</summary>
    public RunManifest WithRound(RoundRecord record) => this with
    {
        Rounds = Rounds.Where(r => r.Round != record.Round).Append(record).OrderBy(r => r.Round).ToList(),
    };

    private SortedDictionary<string, int> Total(Func<RoundRecord, IReadOnlyDictionary<string, int>?> counts)
    {
        var total = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var (key, count) in Rounds.SelectMany(r => counts(r) ?? new Dictionary<string, int>()))
            total[key] = total.GetValueOrDefault(key) + count;
        return total;
    }

    /// <summary>
    /// Whether the manifest already records the answer to the command that <paramref name="mark"/> of
    /// <paramref name="round"/> leads to: started -> round 0 trained; generated -> trained; trained -> evaluated;
    /// evaluated -> the next round generated, or the test set scored. Such an event is a late duplicate.
    /// </summary>
    public bool HasMovedPast(RunProgressMark mark, int round) => mark switch
    {
        RunProgressMark.Started => Round(0).CheckpointFolder is not null,
        RunProgressMark.Generated => Round(round).CheckpointFolder is not null,
        RunProgressMark.Trained => Round(round).ValidationLoss is not null,
        RunProgressMark.Evaluated => Rounds.Any(r => r.Round > round && r.ShardBlob is not null) || TestReport is not null,
        RunProgressMark.TestScored => false, // completion is idempotent on its own (write-once report, status, RunCompleted)
        _ => throw new ArgumentOutOfRangeException(nameof(mark), mark, null),
    };

    /// <summary>Whether <paramref name="mark"/> of <paramref name="round"/> is the event that completed this run.</summary>
    public bool IsCompletedBy(RunProgressMark mark, int round) => BestRound is not null && mark switch
    {
        RunProgressMark.TestScored => Test is not null,
        RunProgressMark.Evaluated => Test is null && round == Rounds.Max(r => r.Round),
        _ => false,
    };

    public RoundRecord Round(int round) => Rounds.FirstOrDefault(r => r.Round == round) ?? new RoundRecord(round);
}
