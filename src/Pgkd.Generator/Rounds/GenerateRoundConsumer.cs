using System.Diagnostics;
using MassTransit;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;
using Pgkd.Storage;

namespace Pgkd.Generator.Rounds;

/// <summary>
/// The generator's account of a round, stored after the shard (the step's completion marker): samples, rejections by
/// reason, tokens and cost, and how the teacher behaved: requests (<paramref name="TeacherCalls"/>, repairs included),
/// attempts retried by cause (<c>429</c>, <c>5xx</c>, <c>timeout</c>, <c>network</c>), malformed replies the repair turn
/// fixed and replies that stayed unusable. The trailing fields default for summaries stored before they existed.
/// </summary>
public sealed record GenerationSummary(int Round, int Requested, int Accepted, IReadOnlyDictionary<string, int> RejectedByReason,
    long PromptTokens, long CompletionTokens, decimal CostUsd, double TeacherSeconds, string? StopReason,
    int TeacherCalls = 0, IReadOnlyDictionary<string, int>? RetriesByCause = null, int RepairedReplies = 0, int UnusableReplies = 0,
    string? ResponseMode = null, int PromptsFiltered = 0, int RepliesFiltered = 0, int TruncatedReplies = 0, int SamplesLostToTruncation = 0,
    int? SamplesPerRequest = null, long CachedPromptTokens = 0, decimal CachedSavingsUsd = 0m, string? TeacherApi = null);

/// <summary>
/// One round's teacher work: the prompt from the round's guidance (allocation, validation report, hard negatives),
/// the teacher's replies validated by the Core parser against everything the student trains on (duplicates) and
/// everything it is judged on (validation and test: leakage), and the accepted samples stored as the round's shard.
/// Idempotent: a stored shard is never asked for again, only re-announced.
/// </summary>
public sealed class GenerateRoundConsumer(RunStore store, RoundShardGenerator generator, ILogger<GenerateRoundConsumer> logger)
    : IConsumer<GenerateRound>
{
    public async Task Consume(ConsumeContext<GenerateRound> context)
    {
        var m = context.Message;
        using var span = PgkdMetrics.StartStep("pgkd.generate", m.RunId, m.Round);
        var shardBlob = store.BlobNameOf(m.ShardUri);
        var summaryBlob = RunBlobLayout.GenerationSummary(m.RunId, m.Round);
        var manifest = await store.ReadManifestAsync(m.RunId, context.CancellationToken)
                       ?? throw new InvalidOperationException($"run {m.RunId} has no manifest");
        var labels = new LabelSet(manifest.Labels);

        GenerationSummary summary;
        if (await store.ReadStepOutputAsync(summaryBlob, m.IdempotencyKey, context.CancellationToken) is { } storedSummary)
        {
            summary = storedSummary.ToObjectFromJson<GenerationSummary>(RunStore.Json)!;
            logger.LogInformation("Run {RunId} round {Round}: shard already stored; announcing it again", m.RunId, m.Round);
        }
        else if (await store.ExistsAsync(shardBlob, context.CancellationToken))
        {
            // The shard was stored but the step died before its summary: keep the shard (never ask the teacher
            // twice for one round) and account for it from its content; the lost call figures are unknown.
            var stored = await store.ReadDatasetAsync(shardBlob, labels, context.CancellationToken);
            summary = new GenerationSummary(m.Round, stored.Count, stored.Count, new Dictionary<string, int>(), 0, 0, 0m, 0,
                "recovered from a stored shard; teacher usage of that attempt was not recorded");
            if (await store.WriteStepOutputAsync(summaryBlob, BinaryData.FromObjectAsJson(summary, RunStore.Json), m.IdempotencyKey, context.CancellationToken))
                RecordMetrics(m, summary);
        }
        else
        {
            summary = await GenerateAsync(m, manifest, labels, shardBlob, context.CancellationToken);
            if (await store.WriteStepOutputAsync(summaryBlob, BinaryData.FromObjectAsJson(summary, RunStore.Json), m.IdempotencyKey, context.CancellationToken))
                RecordMetrics(m, summary);
        }

        await context.Publish(new RoundGenerated(m.RunId, m.Round, m.IdempotencyKey, m.ShardUri, summary.Requested, summary.Accepted,
            summary.RejectedByReason, summary.PromptTokens, summary.CompletionTokens, summary.CostUsd, summary.TeacherSeconds,
            summary.TeacherCalls, summary.RetriesByCause ?? new Dictionary<string, int>(), summary.RepairedReplies, summary.UnusableReplies,
            summary.StopReason, summary.ResponseMode, summary.PromptsFiltered, summary.RepliesFiltered, summary.TruncatedReplies,
            summary.SamplesLostToTruncation, summary.SamplesPerRequest, summary.CachedPromptTokens, summary.CachedSavingsUsd, summary.TeacherApi));
    }

    /// <summary>Once per round: only the delivery whose summary was stored first counts it.</summary>
    private static void RecordMetrics(GenerateRound m, GenerationSummary summary) =>
        PgkdMetrics.Generated(m.RunId, m.Round, summary.Requested, summary.Accepted, summary.RejectedByReason.Values.Sum(),
            summary.PromptTokens + summary.CompletionTokens, summary.CostUsd);

    private async Task<GenerationSummary> GenerateAsync(GenerateRound m, RunManifest manifest, LabelSet labels, string shardBlob,
        CancellationToken cancellationToken)
    {
        var config = manifest.Configuration;
        // The guidance names the evaluation it was planned from; both are read while the datasets are.
        async Task<(RoundGuidance, RoundEvaluation)> ReadGuidanceAsync()
        {
            var guidance = (await store.ReadAsync(store.BlobNameOf(m.GuidanceUri), cancellationToken)).ToObjectFromJson<RoundGuidance>(RunStore.Json)!;
            return (guidance, (await store.ReadAsync(guidance.EvaluationBlob, cancellationToken)).ToObjectFromJson<RoundEvaluation>(RunStore.Json)!);
        }
        var guidanceRead = ReadGuidanceAsync();

        // Everything the student trains on (duplicates) and is judged on (leakage), read at once: a round's fixed cost.
        var earlierShards = manifest.Rounds.Where(r => r.Round < m.Round && r.ShardBlob is not null).Select(r => r.ShardBlob!);
        var judgedOn = manifest.Test is { } test ? new[] { manifest.SeedValidation.BlobName, test.BlobName } : [manifest.SeedValidation.BlobName];
        var trainedOnTask = Task.WhenAll(earlierShards.Prepend(manifest.SeedTrain.BlobName).Select(b => store.ReadDatasetAsync(b, labels, cancellationToken)));
        var judgedOnTask = Task.WhenAll(judgedOn.Select(b => store.ReadDatasetAsync(b, labels, cancellationToken)));
        var trainedOn = await trainedOnTask;
        var seedTrain = trainedOn[0];
        var trainingHashes = seedTrain.TextHashes();
        foreach (var earlier in trainedOn.Skip(1)) trainingHashes.UnionWith(earlier.TextHashes());
        var heldOut = new HashSet<string>(StringComparer.Ordinal);
        foreach (var judged in await judgedOnTask) heldOut.UnionWith(judged.TextHashes());
        var (guidance, evaluation) = await guidanceRead;

        // Samples per request carry over from the last round that lowered them (replies cut off at the output limit).
        var request = RoundShardRequest.ForRound(m.RunId.ToString(), m.Round, config, labels, manifest.TaskDescription,
            guidance.Allocation, guidance.PromptOptions, seedTrain, evaluation.Report, evaluation.Guidance, trainingHashes, heldOut,
            manifest.Rounds.LastOrDefault(r => r.Round < m.Round && r.SamplesPerRequest is not null)?.SamplesPerRequest, guidance.Bounds);
        var ledger = TeacherUsageLedger.ForRun(config, manifest.TeacherTokens, manifest.TeacherCostUsd);
        var clock = Stopwatch.StartNew();
        var shard = await generator.GenerateAsync(request, ledger, cancellationToken, new BatchJournal(store, RunBlobLayout.GenerationBatch(m.RunId, m.Round)));
        clock.Stop();

        using var buffer = new MemoryStream();
        shard.WriteJsonl(buffer);
        await store.WriteOnceAsync(shardBlob, BinaryData.FromBytes(buffer.ToArray()), cancellationToken);
        var retries = shard.RetriesByCause.ToDictionary(r => RoundShardGenerator.CauseName(r.Key), r => r.Value);
        logger.LogInformation("Run {RunId} round {Round}: teacher gave {Accepted} of {Requested} samples ({Rejected} rejected, {Tokens} tokens, " +
            "{Cached} cached, ${Cost:F4}; {Calls} requests in {Mode}, retried {Retries}, {Repaired} replies repaired, {Unusable} unusable, " +
            "content filter {PromptsFiltered} prompts + {RepliesFiltered} replies, {Truncated} replies cut off ({Lost} samples lost, {PerRequest} per request now)){Stop}",
            m.RunId, m.Round, shard.Examples.Count, shard.Requested.Sum(), shard.Rejected.Values.Sum(),
            shard.PromptTokens + shard.CompletionTokens, shard.CachedPromptTokens, shard.CostUsd, shard.Calls.Count, shard.ResponseMode ?? "no mode",
            retries.Count == 0 ? "none" : string.Join(", ", retries.Select(r => $"{r.Key} {r.Value}")), shard.RepairedReplies, shard.UnusableReplies,
            shard.PromptsFiltered, shard.RepliesFiltered, shard.TruncatedReplies, shard.LostToTruncation, shard.SamplesPerRequest,
            shard.StopReason is null ? "" : "; " + shard.StopReason);
        return new GenerationSummary(m.Round, shard.Requested.Sum(), shard.Examples.Count,
            shard.Rejected.ToDictionary(r => r.Key.ToString(), r => r.Value), shard.PromptTokens, shard.CompletionTokens, shard.CostUsd,
            clock.Elapsed.TotalSeconds, shard.StopReason, shard.Calls.Count, retries, shard.RepairedReplies, shard.UnusableReplies,
            shard.ResponseMode, shard.PromptsFiltered, shard.RepliesFiltered, shard.TruncatedReplies, shard.LostToTruncation,
            shard.SamplesPerRequest, shard.CachedPromptTokens, shard.CachedSavingsUsd, shard.Api);
    }
}

/// <summary>A round's Batch API job in the run's blobs: a redelivered step resumes the batch it created instead of paying for another.</summary>
internal sealed class BatchJournal(RunStore store, string blob) : ITeacherBatchJournal
{
    public async Task<string?> ReadAsync(CancellationToken cancellationToken) =>
        await store.ExistsAsync(blob, cancellationToken) ? (await store.ReadAsync(blob, cancellationToken)).ToString() : null;

    public Task WriteAsync(string state, CancellationToken cancellationToken) =>
        store.WriteOnceAsync(blob, BinaryData.FromString(state), cancellationToken);
}
