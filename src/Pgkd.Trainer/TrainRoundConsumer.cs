using System.Diagnostics;
using System.Text.Json;
using MassTransit;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Trainer;

/// <summary>What the trainer stores last in a checkpoint folder: the completion marker and the figures it reports.</summary>
/// <paramref name="Epochs"/> is the epochs the round ran; with stopping within the round, <paramref name="KeptEpoch"/> is the epoch whose
/// weights the checkpoint holds and <paramref name="ValidationLoss"/> its loss on the feedback validation data (null otherwise).
public sealed record TrainingSummary(int Round, int TrainingExamples, double ExamplesPerSecond, double TrainingLoss, double TrainingSeconds, string Device,
    int? Epochs = null, int? KeptEpoch = null, double? ValidationLoss = null);

/// <summary>
/// Trains the student for one round: seed data plus every shard so far, continuing from the previous round's
/// checkpoint when the orchestrator names one (full mode; head mode trains a fresh head, see
/// <see cref="StudentSettings.ContinuesFromPreviousRound"/>), and stores the new checkpoint folder (full mode: student.pt, model.onnx,
/// model.int8.onnx; head mode: head.onnx, the encoder being the pretrained one the package ships; then metadata.json and training.json).
/// Idempotent: a folder with training.json is complete, and a redelivered command (training.json carries its key)
/// only re-announces it.
/// </summary>
public sealed class TrainRoundConsumer(RunStore store, StudentTrainer trainer, IConfiguration configuration,
    ILogger<TrainRoundConsumer> logger) : IConsumer<TrainRound>
{
    public const string SummaryFileName = "training.json";

    public async Task Consume(ConsumeContext<TrainRound> context)
    {
        var m = context.Message;
        using var span = PgkdMetrics.StartStep("pgkd.train", m.RunId, m.Round);
        var folder = store.BlobNameOf(m.CheckpointUri);
        var summaryBlob = folder + SummaryFileName;

        if (await store.ReadStepOutputAsync(summaryBlob, m.IdempotencyKey, context.CancellationToken) is { } stored)
        {
            var done = stored.ToObjectFromJson<TrainingSummary>(RunStore.Json)!;
            logger.LogInformation("Run {RunId} round {Round}: checkpoint already complete; announcing it again", m.RunId, m.Round);
            await AnnounceAsync(context, done, firstTime: false);
            return;
        }

        var manifest = await store.ReadManifestAsync(m.RunId, context.CancellationToken)
                       ?? throw new InvalidOperationException($"run {m.RunId} has no manifest");
        var labels = new LabelSet(manifest.Labels);
        // Seed data and every shard so far, read at once (a round's fixed cost, Round anatomy), kept in the command's order.
        var datasets = await Task.WhenAll(m.TrainingDataUris.Select(uri => store.ReadDatasetAsync(store.BlobNameOf(uri), labels, context.CancellationToken)));
        var examples = datasets.SelectMany(d => d.Examples).ToList();
        // Stopping within the round measures the loss on the feedback part (the data the teacher's report comes from). In a split run
        // the selection part that judges rounds stays unseen; with one validation set (SelectionShare 0) both are the same data,
        // and the judge's figures are then optimistic by what stopping chose on it.
        var validation = manifest.Student.StopsWithinRound
            ? (await store.ReadDatasetAsync(manifest.FeedbackData.BlobName, labels, context.CancellationToken)).Examples
            : null;

        var work = Directory.CreateTempSubdirectory($"pgkd-train-{m.RunId:N}-{m.Round}-").FullName;
        try
        {
            StudentCheckpoint? startFrom = null;
            if (m.StartFromCheckpointUri is { } previous)
            {
                // Only what training on reads: metadata.json and student.pt (or head.onnx), not the ~113 MB of serving graphs.
                var local = Directory.CreateDirectory(Path.Combine(work, "previous")).FullName;
                var previousFolder = store.BlobNameOf(previous);
                await store.DownloadToFileAsync(previousFolder + StudentCheckpoint.MetadataFileName, Path.Combine(local, StudentCheckpoint.MetadataFileName), context.CancellationToken);
                var weights = StudentCheckpoint.WeightsFileOf(StudentCheckpoint.ReadMetadata(local));
                await store.DownloadToFileAsync(previousFolder + weights, Path.Combine(local, weights), context.CancellationToken);
                startFrom = StudentCheckpoint.Load(local);
            }

            var options = TrainingOptions(manifest, m.Round);
            var output = Path.Combine(work, "checkpoint");
            var clock = Stopwatch.StartNew();
            StudentTrainingProgress? last = null, kept = null;
            logger.LogInformation("Run {RunId} round {Round}: training ({Mode}) on {Count} examples", m.RunId, m.Round, options.Mode, examples.Count);
            // Training is CPU-bound and synchronous; keep it off the bus's dispatch threads.
            var checkpoint = await Task.Run(() => trainer.Train(options, examples, labels, output, startFrom, progress =>
            {
                if (progress.Phase == StudentTrainingPhase.Done) kept = progress;
                if (progress.Phase != StudentTrainingPhase.Training) return;
                last = progress;
                if (progress.ValidationLoss is { } heldLoss)
                    logger.LogInformation("Run {RunId} round {Round}: epoch {Epoch}/{Epochs} step {Step}, loss {Loss:F4}, validation loss {ValidationLoss:F4} (best epoch {BestEpoch}), {Rate:F1} examples/s",
                        m.RunId, m.Round, progress.Epoch, progress.Epochs, progress.Step, progress.Loss, heldLoss, progress.BestEpoch, progress.ExamplesPerSecond);
                else
                    logger.LogInformation("Run {RunId} round {Round}: epoch {Epoch} step {Step}, loss {Loss:F4}, {Rate:F1} examples/s",
                        m.RunId, m.Round, progress.Epoch, progress.Step, progress.Loss, progress.ExamplesPerSecond);
            }, context.CancellationToken, validation), context.CancellationToken);
            if (kept?.BestEpoch is { } bestEpoch)
                logger.LogInformation("Run {RunId} round {Round}: stopped after epoch {Epoch} of at most {Cap}; kept epoch {BestEpoch} (validation loss {ValidationLoss:F4})",
                    m.RunId, m.Round, kept.Epoch, options.Epochs, bestEpoch, kept.ValidationLoss);
            clock.Stop();

            // The files first, the marker last: a folder without training.json was never announced.
            foreach (var file in checkpoint.Files)
                await store.WriteUnannouncedFromFileAsync(folder + file, Path.Combine(checkpoint.Directory, file), context.CancellationToken);
            var summary = new TrainingSummary(m.Round, examples.Count,
                // The epochs the round ran: more than options.Epochs where its floor on steps added some (StudentSettings.StepsPerClass),
                // fewer where it stopped on validation loss (StudentSettings.ValidationPatience).
                (double)examples.Count * (kept?.Epoch ?? options.Epochs) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9),
                last is { Loss: var loss } && double.IsFinite(loss) ? loss : 0, clock.Elapsed.TotalSeconds, options.Device,
                kept?.Epoch, kept?.BestEpoch, kept?.ValidationLoss);
            var firstTime = await store.WriteStepOutputAsync(summaryBlob, BinaryData.FromObjectAsJson(summary, RunStore.Json), m.IdempotencyKey,
                context.CancellationToken);
            await AnnounceAsync(context, summary, firstTime);
        }
        finally
        {
            // What the upload and the datasets held goes back to the system after the message (ReleaseMemoryAfterEachMessage).
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Publishes the checkpoint; its figures are recorded only by the delivery that stored it (redeliveries do not count twice).</summary>
    private static async Task AnnounceAsync(ConsumeContext<TrainRound> context, TrainingSummary summary, bool firstTime)
    {
        var m = context.Message;
        if (firstTime) PgkdMetrics.Trained(m.RunId, m.Round, summary.TrainingExamples, summary.ExamplesPerSecond, summary.TrainingLoss);
        await context.Publish(new RoundTrained(m.RunId, m.Round, m.IdempotencyKey, m.CheckpointUri, summary.TrainingExamples,
            summary.ExamplesPerSecond, summary.TrainingLoss, summary.TrainingSeconds));
    }

    private StudentTrainingOptions TrainingOptions(RunManifest manifest, int round) =>
        TrainingStep.Options(manifest.Student, manifest.Configuration, manifest.Labels.Count, round,
            configuration.GetValue("Trainer:Threads", 0), configuration["Trainer:Device"] ?? "auto");
}
