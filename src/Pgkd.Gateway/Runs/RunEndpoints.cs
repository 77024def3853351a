using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MassTransit;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Core.Teacher;
using Pgkd.Storage;

namespace Pgkd.Gateway.Runs;

/// <summary>Start, list, watch and cancel distillation runs.</summary>
public static class RunEndpoints
{
    public sealed record RunAccepted(Guid RunId, string Status, string Location);

    public sealed record RunSummary(Guid RunId, RunStatus Status, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt,
        int RoundsEvaluated, int? BestRound, double? BestAccuracy, long TeacherTokens, decimal TeacherCostUsd);

    public static RouteGroupBuilder MapRuns(this RouteGroupBuilder v1)
    {
        var runs = v1.MapGroup("/runs").WithTags("Runs");
        runs.MapPost("/", CreateAsync)
            .WithSummary("Start a distillation run")
            .WithDescription("Validates labels, datasets and configuration first; a rejected run stores nothing. With ?dryRun=true " +
                             "nothing is stored or started: 200 with the most the run can cost (teacher calls, prompt and completion " +
                             "tokens counted with the teacher model's tokenizer, dollars; per round and in all). With an " +
                             "Idempotency-Key header, a retry with the same key and body answers 200 with the same run (nothing new " +
                             "is stored); the same key with another body is refused with 422.");
        runs.MapGet("/", ListAsync).WithSummary("List runs, newest first");
        runs.MapGet("/{runId:guid}", GetAsync).WithSummary("A run's status, per-round metrics, teacher usage and cost, best round and test scores");
        runs.MapPost("/{runId:guid}/cancel", CancelAsync).WithSummary("Cancel a run; the round in flight finishes first");
        return v1;
    }

    /// <summary>The header a client sends so that a retried <c>POST /v1/runs</c> does not start (and pay for) a second run.</summary>
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    /// <summary>Longest accepted key; a UUID is 36 characters.</summary>
    public const int MaxIdempotencyKeyLength = 255;

    private static async Task<Results<Accepted<RunAccepted>, Ok<RunAccepted>, Ok<CostForecast>, ProblemHttpResult>> CreateAsync(
        RunRequest request, [FromHeader(Name = IdempotencyKeyHeader)] string? idempotencyKey, RunStore store, IPublishEndpoint bus,
        TimeProvider clock, RunForecaster forecaster, CancellationToken cancellationToken, bool dryRun = false)
    {
        RunSubmission submission;
        try
        {
            submission = RunSubmissionParser.Parse(request);
        }
        catch (RunSubmissionException e)
        {
            return TypedResults.Problem(title: "The run was rejected", detail: string.Join("\n", e.Problems),
                statusCode: StatusCodes.Status400BadRequest, extensions: new Dictionary<string, object?> { ["problems"] = e.Problems });
        }
        if (idempotencyKey is not null && !IsValidIdempotencyKey(idempotencyKey))
            return TypedResults.Problem(title: "Invalid Idempotency-Key",
                detail: $"{IdempotencyKeyHeader} must be 1 to {MaxIdempotencyKeyLength} visible ASCII characters (a UUID is a good key)",
                statusCode: StatusCodes.Status400BadRequest);

        // Before anything is spent: the run's most, also kept in its manifest so its report shows forecast against actual.
        var forecast = forecaster.Forecast(submission);
        if (dryRun) return TypedResults.Ok(forecast);

        var runId = Guid.NewGuid();
        var now = clock.GetUtcNow();
        var replay = false;
        await store.EnsureContainerAsync(cancellationToken);
        if (idempotencyKey is not null)
        {
            // The key is claimed before anything is stored. A retry (or a concurrent twin) gets the first request's run id
            // and creation time, so if the first died half-way the retry writes the very same bytes and finishes the job.
            var requestHash = RequestSha256(request);
            var (record, claimed) = await store.ClaimIdempotencyKeyAsync(
                new IdempotencyRecord(Sha256Hex(Encoding.UTF8.GetBytes(idempotencyKey)), requestHash, runId, now), cancellationToken);
            if (record.RequestSha256 != requestHash)
                return TypedResults.Problem(title: "Idempotency-Key reused with a different request",
                    detail: $"{IdempotencyKeyHeader} \"{idempotencyKey}\" was first used at {record.CreatedAt:O} for run {record.RunId} with another " +
                            "body; a key names one request. Send a new key for a new run.",
                    statusCode: StatusCodes.Status422UnprocessableEntity,
                    extensions: new Dictionary<string, object?> { ["idempotencyKey"] = idempotencyKey, ["runId"] = record.RunId });
            (runId, now, replay) = (record.RunId, record.CreatedAt, !claimed);
            if (replay && await store.ExistsAsync(RunBlobLayout.Manifest(runId), cancellationToken))
                return TypedResults.Ok(Accepted(runId));
        }

        var seedTrain = await StoreDatasetAsync(store, RunBlobLayout.SeedTrain(runId), submission.Train, cancellationToken);
        var seedValidation = await StoreDatasetAsync(store, RunBlobLayout.SeedValidation(runId), submission.Validation, cancellationToken);
        var parts = submission.ValidationParts;
        var feedback = parts.IsSplit ? await StoreDatasetAsync(store, RunBlobLayout.FeedbackValidation(runId), parts.Feedback, cancellationToken) : null;
        var selection = parts.IsSplit ? await StoreDatasetAsync(store, RunBlobLayout.SelectionValidation(runId), parts.Selection, cancellationToken) : null;
        var test = submission.Test is null ? null : await StoreDatasetAsync(store, RunBlobLayout.Test(runId), submission.Test, cancellationToken);
        var pool = submission.Pool is null ? null : await StoreDatasetAsync(store, RunBlobLayout.Pool(runId), submission.Pool, cancellationToken);
        try
        {
            await store.CreateManifestAsync(new RunManifest
            {
                RunId = runId,
                CreatedAt = now,
                UpdatedAt = now,
                Code = CodeVersion.Current,
                Labels = submission.Labels.Labels,
                Configuration = submission.Configuration,
                Student = submission.Student,
                TaskDescription = submission.TaskDescription,
                SeedTrain = seedTrain,
                SeedValidation = seedValidation,
                FeedbackValidation = feedback,
                SelectionValidation = selection,
                Test = test,
                Forecast = forecast,
                Pool = pool,
            }, cancellationToken);
        }
        catch (StoredDataConflictException) when (replay)
        {
            // The concurrent first request created the manifest and the run has moved on since: it is started.
            return TypedResults.Ok(Accepted(runId));
        }

        // A replay publishes StartRun again with the same idempotency key: the orchestrator starts a run once.
        await bus.Publish(new StartRun(runId, IdempotencyKeys.For(runId, "started"), store.UriOf(RunBlobLayout.Manifest(runId)), now),
            cancellationToken);
        return replay ? TypedResults.Ok(Accepted(runId)) : TypedResults.Accepted($"/v1/runs/{runId}", Accepted(runId));
    }

    private static RunAccepted Accepted(Guid runId) => new(runId, nameof(RunStatus.Running), $"/v1/runs/{runId}");

    internal static bool IsValidIdempotencyKey(string key) =>
        key.Length is > 0 and <= MaxIdempotencyKeyLength && key.All(c => c is >= '!' and <= '~');

    /// <summary>
    /// The request as canonical JSON (what binding read, re-serialised without whitespace), hashed: the same key with the same
    /// body matches however the client spaced it; any change of a value, dataset line or setting does not.
    /// </summary>
    internal static string RequestSha256(RunRequest request) =>
        Sha256Hex(JsonSerializer.SerializeToUtf8Bytes(request, RunSubmissionParser.Json));

    private static string Sha256Hex(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static async Task<StoredDataset> StoreDatasetAsync(RunStore store, string blobName, Dataset dataset, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        DatasetWriter.WriteJsonl(buffer, dataset.Examples);
        await store.WriteOnceAsync(blobName, BinaryData.FromBytes(buffer.ToArray()), cancellationToken);
        return new StoredDataset(blobName, dataset.Count, dataset.ContentHash);
    }

    private static async Task<Ok<IReadOnlyList<RunSummary>>> ListAsync(RunStore store, CancellationToken cancellationToken)
    {
        var summaries = new List<RunSummary>();
        await foreach (var runId in store.ListRunIdsAsync(cancellationToken))
            if (await store.ReadManifestAsync(runId, cancellationToken) is { } manifest)
                summaries.Add(Summarize(manifest));
        return TypedResults.Ok<IReadOnlyList<RunSummary>>(summaries.OrderByDescending(s => s.CreatedAt).ToList());
    }

    private static async Task<Results<Ok<RunManifest>, ProblemHttpResult>> GetAsync(Guid runId, RunStore store, CancellationToken cancellationToken) =>
        await store.ReadManifestAsync(runId, cancellationToken) is { } manifest
            ? TypedResults.Ok(manifest)
            : NotFound(runId);

    private static async Task<Results<Accepted<RunSummary>, ProblemHttpResult>> CancelAsync(
        Guid runId, RunStore store, IPublishEndpoint bus, CancellationToken cancellationToken)
    {
        var manifest = await store.ReadManifestAsync(runId, cancellationToken);
        if (manifest is null) return NotFound(runId);
        if (manifest.IsFinished)
            return TypedResults.Problem(title: "The run has already finished", detail: $"run {runId} is {manifest.Status}",
                statusCode: StatusCodes.Status409Conflict);
        await bus.Publish(new CancelRun(runId, IdempotencyKeys.For(runId, "cancel"), "cancelled through the gateway"), cancellationToken);
        return TypedResults.Accepted($"/v1/runs/{runId}", Summarize(manifest));
    }

    private static ProblemHttpResult NotFound(Guid runId) =>
        TypedResults.Problem(title: "No such run", detail: $"run {runId} does not exist", statusCode: StatusCodes.Status404NotFound);

    private static RunSummary Summarize(RunManifest m)
    {
        var best = m.BestRound is { } b ? m.Round(b) : null;
        return new RunSummary(m.RunId, m.Status, m.CreatedAt, m.UpdatedAt, m.Rounds.Count(r => r.Accuracy is not null),
            m.BestRound, best?.Accuracy, m.TeacherTokens, m.TeacherCostUsd);
    }
}
