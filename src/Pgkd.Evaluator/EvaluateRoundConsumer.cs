using System.Diagnostics;
using MassTransit;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Evaluator;

/// <summary>
/// Scores a checkpoint with ONNX Runtime on validation or test data (<see cref="EvaluationStep"/>): the validation report
/// ("gradual evaluation check"), and on validation the hard negatives and prediction samples for the next round's prompt,
/// mined as the command's Mining says. This class only moves blobs and messages. Idempotent: an evaluation blob stored by
/// this command (its key is on the blob) is only re-announced.
/// </summary>
public sealed class EvaluateRoundConsumer(RunStore store, StudentTokenizer tokenizer, PretrainedEmbedder embedder, IConfiguration configuration,
    ILogger<EvaluateRoundConsumer> logger) : IConsumer<EvaluateRound>
{
    public async Task Consume(ConsumeContext<EvaluateRound> context)
    {
        var m = context.Message;
        using var span = PgkdMetrics.StartStep("pgkd.evaluate", m.RunId, m.Round);
        var evaluationBlob = store.BlobNameOf(m.EvaluationUri);
        var clock = Stopwatch.StartNew();

        RoundEvaluation evaluation;
        var firstTime = false;
        if (await store.ReadStepOutputAsync(evaluationBlob, m.IdempotencyKey, context.CancellationToken) is { } stored)
        {
            evaluation = stored.ToObjectFromJson<RoundEvaluation>(RunStore.Json)!;
            logger.LogInformation("Run {RunId} round {Round}: {Split} already evaluated; announcing it again", m.RunId, m.Round, m.Split);
        }
        else
        {
            evaluation = await EvaluateAsync(m, context.CancellationToken);
            firstTime = await store.WriteStepOutputAsync(evaluationBlob, BinaryData.FromObjectAsJson(evaluation, RunStore.Json), m.IdempotencyKey,
                context.CancellationToken);
        }

        var report = evaluation.Report;
        // Only the delivery that stored the evaluation records it: a redelivered command does not count twice.
        if (firstTime) PgkdMetrics.Evaluated(m.RunId, m.Round, m.Split.ToString(), report.ValidationLoss, report.Accuracy, report.MacroF1);
        logger.LogInformation("Run {RunId} round {Round} {Split}: accuracy {Accuracy:F4}, macro-F1 {MacroF1:F4}, loss {Loss:F4}, {HardNegatives} hard negatives",
            m.RunId, m.Round, m.Split, report.Accuracy, report.MacroF1, report.ValidationLoss, evaluation.Guidance.HardNegatives.Count);
        var selection = evaluation.SelectionReport;
        if (selection is not null)
            logger.LogInformation("Run {RunId} round {Round} selection part: accuracy {Accuracy:F4}, macro-F1 {MacroF1:F4}, loss {Loss:F4}",
                m.RunId, m.Round, selection.Accuracy, selection.MacroF1, selection.ValidationLoss);
        await context.Publish(new RoundEvaluated(m.RunId, m.Round, m.IdempotencyKey, m.Split, m.EvaluationUri,
            report.ValidationLoss, report.Accuracy, report.MacroF1, clock.Elapsed.TotalSeconds,
            selection?.ValidationLoss, selection?.Accuracy, selection?.MacroF1));
    }

    private async Task<RoundEvaluation> EvaluateAsync(EvaluateRound m, CancellationToken cancellationToken)
    {
        var manifest = await store.ReadManifestAsync(m.RunId, cancellationToken)
                       ?? throw new InvalidOperationException($"run {m.RunId} has no manifest");
        var labels = new LabelSet(manifest.Labels);
        var data = await store.ReadDatasetAsync(store.BlobNameOf(m.DataUri), labels, cancellationToken);
        // A split run also scores the selection part, the round's judge; the teacher never sees it.
        var selection = m.Split == EvaluationSplit.Validation && manifest.SelectionValidation is { } selectionData
            ? await store.ReadDatasetAsync(selectionData.BlobName, labels, cancellationToken)
            : null;

        // Hard negatives from training: the seed data and every shard the round trained on, in the trainer's order.
        var mining = m.Split == EvaluationSplit.Validation ? m.Mining : null;
        Dataset? training = null;
        if (mining is { MinesTraining: true })
        {
            var parts = await Task.WhenAll(manifest.TrainingBlobs(m.Round).Select(b => store.ReadDatasetAsync(b, labels, cancellationToken)));
            training = new Dataset(parts.SelectMany(p => p.Examples).ToList());
        }

        var checkpointFolder = store.BlobNameOf(m.CheckpointUri);
        var local = Directory.CreateTempSubdirectory($"pgkd-eval-{m.RunId:N}-{m.Round}-").FullName;
        try
        {
            async Task FetchAsync(string file) => await store.DownloadToFileAsync(checkpointFolder + file, Path.Combine(local, file), cancellationToken);
            await FetchAsync(StudentCheckpoint.MetadataFileName);
            await FetchAsync(EvaluationStep.FileNeeded(StudentCheckpoint.ReadMetadata(local)));
            using var student = EvaluationStep.LoadStudent(local, labels, embedder, tokenizer, configuration.GetValue("Evaluator:Threads", 0));
            // Hard negatives only from validation, as the command says: the test set is never shown to anyone.
            return EvaluationStep.Evaluate(student, m.Round, m.Split.ToString(), checkpointFolder, data, selection, labels, mining, training);
        }
        finally
        {
            // The session's arena and the graph it parsed go back to the system after the message (ReleaseMemoryAfterEachMessage).
            Directory.Delete(local, recursive: true);
        }
    }
}
