using System.Diagnostics;
using MassTransit;
using Pgkd.Contracts;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;
using Pgkd.Storage;

namespace Pgkd.Orchestrator;

/// <summary>
/// Drives each run through its rounds (DESIGN.md §1): train round 0 on the seed set; then evaluate, decide with
/// <see cref="RunPlanner"/>, generate, train, evaluate... and finally score the best checkpoint once on the test set.
///
/// State is the run manifest in blob storage, not memory: every handler reads it, records what the message
/// reports, and sends the next command. Handlers are idempotent: a redelivered event (say the orchestrator died after
/// updating the manifest and before publishing) records the same values again and re-sends the same command with the
/// same idempotency key, whose handler finds its output already stored (write-once blobs, marked with that key) and
/// only re-announces it. An event whose answer the manifest already holds (a duplicate arriving late) is dropped, so
/// a duplicate never echoes through the rest of the run. So any service, RabbitMQ included, can restart mid-run.
/// </summary>
public sealed class RunOrchestrator(RunStore store, ILogger<RunOrchestrator> logger) :
    IConsumer<StartRun>, IConsumer<RoundGenerated>, IConsumer<RoundTrained>, IConsumer<RoundEvaluated>, IConsumer<CancelRun>,
    IConsumer<Fault<GenerateRound>>, IConsumer<Fault<TrainRound>>, IConsumer<Fault<EvaluateRound>>
{
    private const string ValidationSplit = nameof(EvaluationSplit.Validation);

    public async Task Consume(ConsumeContext<StartRun> context)
    {
        var manifest = await ActiveRunAsync(context, context.Message.RunId, RunProgressMark.Started, 0);
        if (manifest is null) return;
        var runId = manifest.RunId;
        await StartRoundAsync(context, runId, 0, () => context.Publish(new TrainRound(runId, 0,
            IdempotencyKeys.For(runId, "train", 0), context.Message.ManifestUri,
            [store.UriOf(manifest.SeedTrain.BlobName)], null, store.UriOf(RunBlobLayout.CheckpointFolder(runId, 0)))));
    }

    public async Task Consume(ConsumeContext<RoundGenerated> context)
    {
        var m = context.Message;
        var manifest = await RecordAsync(context, m.RunId, RunProgressMark.Generated, m.Round, run => run.WithRound(run.Round(m.Round) with
        {
            ShardBlob = store.BlobNameOf(m.ShardUri),
            Requested = m.Requested,
            Accepted = m.Accepted,
            RejectedByReason = m.RejectedByReason,
            TeacherTokens = m.PromptTokens + m.CompletionTokens,
            TeacherPromptTokens = m.PromptTokens,
            TeacherCompletionTokens = m.CompletionTokens,
            TeacherCostUsd = m.CostUsd,
            TeacherCalls = m.TeacherCalls,
            TeacherRetriesByCause = m.TeacherRetriesByCause ?? new Dictionary<string, int>(),
            RepairedReplies = m.RepairedReplies,
            UnusableReplies = m.UnusableReplies,
            GenerationStopReason = m.GenerationStopReason,
            ResponseMode = m.ResponseMode,
            PromptsFiltered = m.PromptsFiltered,
            RepliesFiltered = m.RepliesFiltered,
            TruncatedReplies = m.TruncatedReplies,
            SamplesLostToTruncation = m.SamplesLostToTruncation,
            SamplesPerRequest = m.SamplesPerRequest,
            CachedPromptTokens = m.CachedPromptTokens,
            CachedSavingsUsd = m.CachedSavingsUsd,
            TeacherApi = m.TeacherApi,
            TeacherShortfall = TeacherShortfall.Diagnose(m.Requested, m.Accepted, m.RejectedByReason, m.UnusableReplies,
                m.PromptsFiltered + m.RepliesFiltered, m.GenerationStopReason),
        }));
        if (manifest is null || await StopIfCancelledAsync(context, manifest, m.Round)) return;

        // Train on everything so far (seed + every round's shard); full mode continues from the previous round's
        // checkpoint, head mode trains a fresh head (see StudentSettings.ContinuesFromPreviousRound).
        var data = manifest.TrainingBlobs(m.Round).Select(store.UriOf).ToList();
        var startFrom = manifest.Student.ContinuesFromPreviousRound ? store.UriOf(RunBlobLayout.CheckpointFolder(m.RunId, m.Round - 1)) : null;
        await context.Publish(new TrainRound(m.RunId, m.Round, IdempotencyKeys.For(m.RunId, "train", m.Round),
            store.UriOf(RunBlobLayout.Manifest(m.RunId)), data, startFrom,
            store.UriOf(RunBlobLayout.CheckpointFolder(m.RunId, m.Round))));
    }

    public async Task Consume(ConsumeContext<RoundTrained> context)
    {
        var m = context.Message;
        var manifest = await RecordAsync(context, m.RunId, RunProgressMark.Trained, m.Round, run => run.WithRound(run.Round(m.Round) with
        {
            CheckpointFolder = store.BlobNameOf(m.CheckpointUri),
            ExamplesPerSecond = m.ExamplesPerSecond,
        }));
        if (manifest is null || await StopIfCancelledAsync(context, manifest, m.Round)) return;

        await context.Publish(new EvaluateRound(m.RunId, m.Round,
            IdempotencyKeys.For(m.RunId, "evaluate", m.Round, EvaluationSplit.Validation),
            store.UriOf(RunBlobLayout.Manifest(m.RunId)), m.CheckpointUri, EvaluationSplit.Validation,
            store.UriOf(manifest.FeedbackData.BlobName),
            store.UriOf(RunBlobLayout.Evaluation(m.RunId, m.Round, ValidationSplit)), RunPlanner.MiningFor(manifest.Configuration, m.Round)));
    }

    public async Task Consume(ConsumeContext<RoundEvaluated> context)
    {
        var m = context.Message;
        if (m.Split == EvaluationSplit.Test)
        {
            if (await ActiveRunAsync(context, m.RunId, RunProgressMark.TestScored, m.Round) is not null) await CompleteAsync(context, m);
            return;
        }

        var manifest = await RecordAsync(context, m.RunId, RunProgressMark.Evaluated, m.Round, run => run.WithRound(run.Round(m.Round) with
        {
            ValidationLoss = m.Loss,
            Accuracy = m.Accuracy,
            MacroF1 = m.MacroF1,
            SelectionLoss = m.SelectionLoss,
            SelectionAccuracy = m.SelectionAccuracy,
            SelectionMacroF1 = m.SelectionMacroF1,
        }));
        if (manifest is null || await StopIfCancelledAsync(context, manifest, m.Round)) return;

        var step = await DecideAsync(manifest, m.Round, context.CancellationToken);
        switch (step)
        {
            case RunStep.GenerateRound generate:
            {
                var guidanceBlob = RunBlobLayout.Guidance(m.RunId, generate.Round);
                await store.WriteOnceAsync(guidanceBlob, BinaryData.FromObjectAsJson(new RoundGuidance(generate.Round,
                    generate.Allocation, generate.PromptOptions,
                    manifest.Configuration.Strategy == RunStrategy.RandomAugmentation,
                    RunBlobLayout.Evaluation(m.RunId, m.Round, ValidationSplit), generate.Bounds), RunStore.Json), context.CancellationToken);
                await StartRoundAsync(context, m.RunId, generate.Round, () => context.Publish(new GenerateRound(m.RunId, generate.Round,
                    IdempotencyKeys.For(m.RunId, "generate", generate.Round), store.UriOf(RunBlobLayout.Manifest(m.RunId)),
                    store.UriOf(guidanceBlob), store.UriOf(RunBlobLayout.RoundShard(m.RunId, generate.Round)))));
                break;
            }
            case RunStep.Finish finish:
            {
                var best = await store.UpdateManifestAsync(m.RunId, run => run with
                {
                    BestRound = finish.BestRound,
                    StopReason = $"{finish.Reason} after round {m.Round}; best round {finish.BestRound} ({manifest.Configuration.StoppingMetric} {finish.BestValue:F4})",
                }, context.CancellationToken);
                logger.LogInformation("Run {RunId} stops: {Reason}", m.RunId, best.StopReason);
                var bestCheckpoint = store.UriOf(RunBlobLayout.CheckpointFolder(m.RunId, finish.BestRound));
                if (best.Test is { } test)
                {
                    // The test set is scored once, here, on the promoted checkpoint; nothing in the loop saw it.
                    await context.Publish(new EvaluateRound(m.RunId, finish.BestRound,
                        IdempotencyKeys.For(m.RunId, "evaluate", finish.BestRound, EvaluationSplit.Test),
                        store.UriOf(RunBlobLayout.Manifest(m.RunId)), bestCheckpoint, EvaluationSplit.Test,
                        store.UriOf(test.BlobName),
                        store.UriOf(RunBlobLayout.Evaluation(m.RunId, finish.BestRound, nameof(EvaluationSplit.Test)))));
                }
                else
                {
                    await CompleteAsync(context, m with { Split = EvaluationSplit.Validation });
                }
                break;
            }
        }
    }

    public async Task Consume(ConsumeContext<CancelRun> context)
    {
        var m = context.Message;
        // Only recorded here: the next event of the run (its round in flight) sees it and stops the run.
        await store.UpdateManifestAsync(m.RunId, run => run.IsFinished ? run : run with { CancelRequested = true, StopReason = m.Reason },
            context.CancellationToken);
        logger.LogInformation("Run {RunId}: cancel requested ({Reason}); the round in flight finishes first", m.RunId, m.Reason);
    }

    // A command whose handler kept failing (after retries) lands in its error queue; the run fails with the reason.
    public Task Consume(ConsumeContext<Fault<GenerateRound>> context) => FailFromFaultAsync(context, context.Message.Message.RunId, context.Message.Message.Round, "generating");
    public Task Consume(ConsumeContext<Fault<TrainRound>> context) => FailFromFaultAsync(context, context.Message.Message.RunId, context.Message.Message.Round, "training");
    public Task Consume(ConsumeContext<Fault<EvaluateRound>> context) => FailFromFaultAsync(context, context.Message.Message.RunId, context.Message.Message.Round, "evaluating");

    private Task FailFromFaultAsync<T>(ConsumeContext<Fault<T>> context, Guid runId, int round, string step)
    {
        var exception = context.Message.Exceptions.FirstOrDefault();
        var reason = $"{step} round {round} failed: {exception?.Message ?? "unknown error"}";
        return FailAsync(context, runId, reason);
    }

    private async Task FailAsync(ConsumeContext context, Guid runId, string reason)
    {
        var manifest = await store.UpdateManifestAsync(runId, run => run.IsFinished ? run : run with
        {
            Status = RunStatus.Failed,
            FailureReason = reason,
        }, context.CancellationToken);
        logger.LogError("Run {RunId} failed: {Reason}", runId, manifest.FailureReason);
    }

    /// <summary>
    /// Replays the run's validation outcomes through the pure planner: the same outcomes give the same step. The
    /// selection part judges each round; the feedback part (what the teacher is shown) sets the next allocation.
    /// </summary>
    private async Task<RunStep> DecideAsync(RunManifest manifest, int round, CancellationToken cancellationToken)
    {
        var config = manifest.Configuration;
        var progress = RunProgress.Start(config);
        RunStep step = null!;
        // Every round's evaluation at once (a round's fixed cost, Round anatomy), replayed in order.
        var evaluations = await Task.WhenAll(Enumerable.Range(0, round + 1).Select(async r =>
            (await store.ReadAsync(RunBlobLayout.Evaluation(manifest.RunId, r, ValidationSplit), cancellationToken)).ToObjectFromJson<RoundEvaluation>(RunStore.Json)!));
        for (var r = 0; r <= round; r++)
        {
            var evaluation = evaluations[r];
            var record = manifest.Round(r);
            (progress, step) = RunPlanner.Next(config, progress, evaluation.Outcome(record.TeacherTokens, record.TeacherCostUsd));
        }
        return step;
    }

    private async Task CompleteAsync(ConsumeContext context, RoundEvaluated last)
    {
        RunManifest? testScored = null;
        if (last.Split == EvaluationSplit.Test)
        {
            var evaluation = (await store.ReadAsync(store.BlobNameOf(last.EvaluationUri), context.CancellationToken))
                .ToObjectFromJson<RoundEvaluation>(RunStore.Json)!;
            testScored = await store.UpdateManifestAsync(last.RunId, run => run with { TestReport = evaluation.Report }, context.CancellationToken);
        }
        var manifest = testScored ?? (await store.ReadManifestAsync(last.RunId, context.CancellationToken))!;
        manifest = manifest with { BestRound = manifest.BestRound ?? last.Round };

        await store.WriteOnceAsync(RunBlobLayout.Report(last.RunId), BinaryData.FromObjectAsJson(RunReport.From(manifest), RunStore.Json),
            context.CancellationToken);
        var completed = await store.UpdateManifestAsync(last.RunId, run => run.IsFinished ? run : run with { Status = RunStatus.Completed },
            context.CancellationToken);
        if (completed.Status != RunStatus.Completed) return; // cancelled or failed meanwhile
        await AnnounceCompletedAsync(context, completed with { BestRound = manifest.BestRound });
    }

    /// <summary>Tells the gateway to serve the best round; sent again when the completing event is redelivered.</summary>
    private async Task AnnounceCompletedAsync(ConsumeContext context, RunManifest manifest)
    {
        var bestRound = manifest.BestRound!.Value;
        await context.Publish(new RunCompleted(manifest.RunId, IdempotencyKeys.For(manifest.RunId, "completed"), bestRound,
            store.UriOf(RunBlobLayout.CheckpointFolder(manifest.RunId, bestRound)), store.UriOf(RunBlobLayout.Report(manifest.RunId))));
        logger.LogInformation("Run {RunId} completed; best round {Round}", manifest.RunId, bestRound);
    }

    private async Task<bool> StopIfCancelledAsync(ConsumeContext context, RunManifest manifest, int round)
    {
        if (manifest.IsFinished) return true; // failed or cancelled meanwhile: nothing more to start
        if (!manifest.CancelRequested) return false;
        await store.UpdateManifestAsync(manifest.RunId, run => run.IsFinished ? run : run with { Status = RunStatus.Cancelled }, context.CancellationToken);
        logger.LogInformation("Run {RunId} cancelled after round {Round}", manifest.RunId, round);
        return true;
    }

    /// <summary>
    /// The run's manifest when the event still has work to do; null when the run has finished, or when the manifest
    /// already holds the answer to the command this event leads to (<see cref="RunProgressMark"/>): the event is a
    /// duplicate that arrived late.
    /// </summary>
    private async Task<RunManifest?> ActiveRunAsync(ConsumeContext context, Guid runId, RunProgressMark mark, int round)
    {
        var manifest = await store.ReadManifestAsync(runId, context.CancellationToken)
                       ?? throw new InvalidOperationException($"run {runId} has no manifest at {RunBlobLayout.Manifest(runId)}");
        return await StillToDoAsync(context, manifest, mark, round) ? manifest : null;
    }

    /// <summary>
    /// <see cref="ActiveRunAsync"/> and the recording of the event's figures in one manifest update (one read, not two): the
    /// updated manifest, or null, with nothing written, when the event has nothing left to do.
    /// </summary>
    private async Task<RunManifest?> RecordAsync(ConsumeContext context, Guid runId, RunProgressMark mark, int round, Func<RunManifest, RunManifest> record)
    {
        var recorded = false;
        var manifest = await store.UpdateManifestAsync(runId, run =>
        {
            recorded = !run.IsFinished && !run.HasMovedPast(mark, round);
            return recorded ? record(run) : run;
        }, context.CancellationToken);
        if (recorded) return manifest;
        await StillToDoAsync(context, manifest, mark, round); // logs the drop, or announces a completion again
        return null;
    }

    private async Task<bool> StillToDoAsync(ConsumeContext context, RunManifest manifest, RunProgressMark mark, int round)
    {
        if (manifest.IsFinished)
        {
            // Died after marking the run Completed, before RunCompleted went out: the redelivered completing event says it again.
            if (manifest.Status == RunStatus.Completed && manifest.IsCompletedBy(mark, round)) await AnnounceCompletedAsync(context, manifest);
            return false;
        }
        if (!manifest.HasMovedPast(mark, round)) return true;
        logger.LogInformation("Run {RunId}: {Event} of round {Round} again, after its answer was recorded; dropped", manifest.RunId, mark, round);
        return false;
    }

    /// <summary>What a round's trace is called on the dashboard: searchable by "pgkd round", the round, or the run id.</summary>
    public static string RoundSpanName(Guid runId, int round) => $"pgkd round {round} · run {runId}";

    /// <summary>
    /// Each round is one trace: a root span <see cref="RoundSpanName"/> (tagged <c>pgkd.run_id</c> and <c>pgkd.round</c>) under which the
    /// command is published, so the generator, trainer and evaluator spans and the messages between them all
    /// share its trace id. A link points back at the trace of the step that decided it.
    /// </summary>
    private static async Task StartRoundAsync(ConsumeContext context, Guid runId, int round, Func<Task> publish)
    {
        var decidedBy = Activity.Current;
        Activity.Current = null;
        try
        {
            using var span = Extensions.ActivitySource.StartActivity(RoundSpanName(runId, round), ActivityKind.Internal, parentContext: default,
                tags: [new("pgkd.run_id", runId.ToString()), new("pgkd.round", round)],
                links: decidedBy is null ? null : [new ActivityLink(decidedBy.Context)]);
            await publish();
        }
        finally
        {
            Activity.Current = decidedBy;
        }
    }
}
