using System.Diagnostics;
using MassTransit;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Evaluator;

/// <summary>
/// Scores a checkpoint with ONNX Runtime on validation or test data: a complete checkpoint through its model.onnx (the graph
/// the gateway serves), a head-only one through the pretrained encoder shared by every round (<see cref="PretrainedEmbedder"/>:
/// the validation texts are embedded once per process) and its head.onnx, the two pieces its served graph is composed of.
/// It reports the validation report ("gradual evaluation check"), and on validation the hard negatives and prediction
/// samples for the next round's prompt. Idempotent: an evaluation blob stored by this command (its key is on the
/// blob) is only re-announced.
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

        var checkpointFolder = store.BlobNameOf(m.CheckpointUri);
        var local = Directory.CreateTempSubdirectory($"pgkd-eval-{m.RunId:N}-{m.Round}-").FullName;
        try
        {
            // metadata.json says which kind; then model.onnx (the TorchSharp state stays in storage) or head.onnx (a few KB).
            // Streamed to disk: a 90 MB model.onnx read into arrays (twice) is what a long-lived evaluator's heap kept.
            Task FetchAsync(string file) => store.DownloadToFileAsync(checkpointFolder + file, Path.Combine(local, file), cancellationToken);
            await FetchAsync(StudentCheckpoint.MetadataFileName);
            var headOnly = StudentCheckpoint.ReadMetadata(local).IsHeadOnly;
            await FetchAsync(headOnly ? StudentCheckpoint.HeadFileName : StudentCheckpoint.OnnxFileName);
            using IStudentClassifier student = headOnly
                ? embedder.LoadHead(local)
                : OnnxStudent.Load(local, new OnnxRunOptions { Threads = configuration.GetValue("Evaluator:Threads", 0) }, tokenizer);
            if (!student.Labels.SequenceEqual(labels.Names, StringComparer.Ordinal))
                throw new InvalidOperationException($"checkpoint {checkpointFolder} has labels ({string.Join(", ", student.Labels)}), the run has ({labels})");

            (ValidationReport Report, IReadOnlyList<IReadOnlyList<double>> Probabilities) Score(Dataset part)
            {
                var probabilities = ClassificationMetrics.ToDouble(student.PredictProbabilities(part.Examples.Select(e => e.Text).ToList()));
                return (ClassificationMetrics.Evaluate(part, probabilities, labels), probabilities);
            }
            var (report, probabilities) = Score(data);

            // A split run also scores the selection part, the round's judge; the teacher never sees it.
            ValidationReport? selectionReport = null;
            if (m.Split == EvaluationSplit.Validation && manifest.SelectionValidation is { } selectionData)
                selectionReport = Score(await store.ReadDatasetAsync(selectionData.BlobName, labels, cancellationToken)).Report;

            // Hard negatives only from validation: the test set is never shown to anyone.
            var guidance = m.Split == EvaluationSplit.Validation
                ? HardNegativeMiner.Mine(data.Examples, probabilities, labels, manifest.Configuration.HardNegativeOptionsForRound(m.Round + 1))
                : HardNegativeSelection.Empty;
            return new RoundEvaluation(m.Round, m.Split.ToString(), checkpointFolder, report, guidance, selectionReport);
        }
        finally
        {
            Directory.Delete(local, recursive: true);
            ProcessMemory.Release(); // the session's arena and the graph it parsed go back to the system (issue 19.1)
        }
    }
}
