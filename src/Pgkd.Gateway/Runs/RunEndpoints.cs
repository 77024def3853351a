using MassTransit;
using Microsoft.AspNetCore.Http.HttpResults;
using Pgkd.Contracts;
using Pgkd.Core.Data;
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
            .WithDescription("Validates labels, datasets and configuration first; a rejected run stores nothing.");
        runs.MapGet("/", ListAsync).WithSummary("List runs, newest first");
        runs.MapGet("/{runId:guid}", GetAsync).WithSummary("A run's status, per-round metrics, teacher usage and cost, best round and test scores");
        runs.MapPost("/{runId:guid}/cancel", CancelAsync).WithSummary("Cancel a run; the round in flight finishes first");
        return v1;
    }

    private static async Task<Results<Accepted<RunAccepted>, ProblemHttpResult>> CreateAsync(
        RunRequest request, RunStore store, IPublishEndpoint bus, TimeProvider clock, CancellationToken cancellationToken)
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

        var runId = Guid.NewGuid();
        await store.EnsureContainerAsync(cancellationToken);
        var seedTrain = await StoreDatasetAsync(store, RunBlobLayout.SeedTrain(runId), submission.Train, cancellationToken);
        var seedValidation = await StoreDatasetAsync(store, RunBlobLayout.SeedValidation(runId), submission.Validation, cancellationToken);
        var parts = submission.ValidationParts;
        var feedback = parts.IsSplit ? await StoreDatasetAsync(store, RunBlobLayout.FeedbackValidation(runId), parts.Feedback, cancellationToken) : null;
        var selection = parts.IsSplit ? await StoreDatasetAsync(store, RunBlobLayout.SelectionValidation(runId), parts.Selection, cancellationToken) : null;
        var test = submission.Test is null ? null : await StoreDatasetAsync(store, RunBlobLayout.Test(runId), submission.Test, cancellationToken);
        var now = clock.GetUtcNow();
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
        }, cancellationToken);

        await bus.Publish(new StartRun(runId, IdempotencyKeys.For(runId, "started"), store.UriOf(RunBlobLayout.Manifest(runId)), now),
            cancellationToken);
        var location = $"/v1/runs/{runId}";
        return TypedResults.Accepted(location, new RunAccepted(runId, nameof(RunStatus.Running), location));
    }

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
