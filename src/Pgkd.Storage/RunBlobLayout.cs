namespace Pgkd.Storage;

/// <summary>
/// Where a run keeps everything, in container <c>runs</c>:
/// <code>
/// runs/{runId}/manifest.json                      the run's durable state (ETag-guarded)
/// runs/{runId}/data/seed-train.jsonl, seed-val.jsonl, test.jsonl, pool.jsonl
/// runs/{runId}/data/round-{r}.jsonl               the teacher's accepted samples of round r (never overwritten)
/// runs/{runId}/guidance/round-{r}.json            what the teacher is asked for in round r
/// runs/{runId}/generations/round-{r}.json         the round's teacher usage and reject tallies
/// runs/{runId}/evaluations/round-{r}-{split}.json validation report, hard negatives
/// runs/{runId}/checkpoints/round-{r}/             full mode: model.onnx, model.int8.onnx, student.pt; head mode: head.onnx; metadata.json, training.json
/// runs/{runId}/report.json                        the finished run's report
/// runs/idempotency/{sha256 of the key}.json        an Idempotency-Key of POST /v1/runs: the request's hash and the run it made
/// </code>
/// Everything but the manifest is written once: a retry finds the same bytes already there.
/// </summary>
public static class RunBlobLayout
{
    public const string Container = "runs";

    public static string Prefix(Guid runId) => $"{runId:D}/";
    public static string Manifest(Guid runId) => $"{runId:D}/manifest.json";
    public static string SeedTrain(Guid runId) => $"{runId:D}/data/seed-train.jsonl";
    public static string SeedValidation(Guid runId) => $"{runId:D}/data/seed-val.jsonl";
    /// <summary>The validation part shown to the teacher, when the run splits its validation data.</summary>
    public static string FeedbackValidation(Guid runId) => $"{runId:D}/data/feedback-val.jsonl";
    /// <summary>The validation part that only judges rounds (early stopping, best round).</summary>
    public static string SelectionValidation(Guid runId) => $"{runId:D}/data/selection-val.jsonl";
    public static string Test(Guid runId) => $"{runId:D}/data/test.jsonl";
    /// <summary>The run's own pool for the teacher emulator, which looks here for the run id a request names (its <c>user</c>).</summary>
    public static string Pool(Guid runId) => $"{runId:D}/data/pool.jsonl";
    public static string RoundShard(Guid runId, int round) => $"{runId:D}/data/round-{Round(round)}.jsonl";
    public static string GenerationSummary(Guid runId, int round) => $"{runId:D}/generations/round-{Round(round)}.json";

    /// <summary>The round's Batch API job (its id and how to find it again), written once when the batch is created.</summary>
    public static string GenerationBatch(Guid runId, int round) => $"{runId:D}/generations/round-{Round(round)}-batch.json";
    public static string Guidance(Guid runId, int round) => $"{runId:D}/guidance/round-{Round(round)}.json";
    public static string Evaluation(Guid runId, int round, string split) => $"{runId:D}/evaluations/round-{Round(round)}-{split.ToLowerInvariant()}.json";
    public static string CheckpointFolder(Guid runId, int round) => $"{runId:D}/checkpoints/round-{Round(round)}/";
    public static string Report(Guid runId) => $"{runId:D}/report.json";

    /// <summary>
    /// The record of one <c>Idempotency-Key</c> of <c>POST /v1/runs</c>, named by the key's SHA-256 (a key may hold any
    /// characters, and the name does not disclose it). Not a run folder: <see cref="RunStore.ListRunIdsAsync"/> skips it.
    /// </summary>
    public static string IdempotencyKey(string keySha256) => $"idempotency/{keySha256}.json";

    private static int Round(int round) =>
        round >= 0 ? round : throw new ArgumentOutOfRangeException(nameof(round), round, "rounds start at 0");
}
