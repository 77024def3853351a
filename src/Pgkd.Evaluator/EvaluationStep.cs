using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Evaluator;

/// <summary>
/// The evaluator's step, without the broker or blob storage around it: load a checkpoint folder the way it is served and
/// score it. <see cref="EvaluateRoundConsumer"/> is a thin adapter around it, and the benchmark's quality section calls the
/// same methods, so the published quality figures are ONNX Runtime's scores of the graphs the gateway serves.
/// </summary>
public static class EvaluationStep
{
    /// <summary>
    /// A complete checkpoint through its model.onnx (the graph the gateway serves), a head-only one through the pretrained
    /// encoder shared by every round (<paramref name="embedder"/>: texts are embedded once per process) and its head.onnx.
    /// The folder needs metadata.json and that file; <see cref="FileNeeded"/> names it.
    /// </summary>
    public static IStudentClassifier LoadStudent(string checkpointDirectory, LabelSet labels, PretrainedEmbedder embedder, StudentTokenizer tokenizer,
        int threads)
    {
        IStudentClassifier student = StudentCheckpoint.ReadMetadata(checkpointDirectory).IsHeadOnly
            ? embedder.LoadHead(checkpointDirectory)
            : OnnxStudent.Load(checkpointDirectory, new OnnxRunOptions { Threads = threads }, tokenizer);
        if (!student.Labels.SequenceEqual(labels.Names, StringComparer.Ordinal))
        {
            student.Dispose();
            throw new InvalidOperationException($"checkpoint {checkpointDirectory} has labels ({string.Join(", ", student.Labels)}), the run has ({labels})");
        }
        return student;
    }

    /// <summary>Besides metadata.json, the one file of a checkpoint folder that scoring reads (the TorchSharp state stays in storage).</summary>
    public static string FileNeeded(StudentCheckpointMetadata metadata) =>
        metadata.IsHeadOnly ? StudentCheckpoint.HeadFileName : StudentCheckpoint.OnnxFileName;

    /// <summary>
    /// Scores <paramref name="data"/> (the feedback part of validation, or the test set) and, when the run splits its validation
    /// data, the <paramref name="selection"/> part that judges the round. Hard negatives are mined with <paramref name="mining"/>
    /// (decided by the planner, <see cref="Core.Run.RunPlanner.MiningFor"/>; null mines nothing) from its source: <paramref name="data"/>,
    /// the round's <paramref name="training"/> data (scored here only for that), or both ranked together.
    /// </summary>
    public static RoundEvaluation Evaluate(IStudentClassifier student, int round, string split, string checkpointFolder, Dataset data,
        Dataset? selection, LabelSet labels, HardNegativeOptions? mining, Dataset? training = null)
    {
        var (report, probabilities) = Score(student, data, labels);
        var selectionReport = selection is null ? null : Score(student, selection, labels).Report;
        var guidance = HardNegativeSelection.Empty;
        if (mining is not null)
        {
            // The training data is scored only when mined: it grows every round.
            var scoredTraining = mining.MinesTraining && training is not null
                ? (training.Examples, Score(student, training, labels).Probabilities)
                : ((IReadOnlyList<LabeledExample>, IReadOnlyList<IReadOnlyList<double>>)?)null;
            guidance = HardNegativeMiner.MineFromSource(mining, labels, (data.Examples, probabilities), scoredTraining);
        }
        return new RoundEvaluation(round, split, checkpointFolder, report, guidance, selectionReport);
    }

    private static (ValidationReport Report, IReadOnlyList<IReadOnlyList<double>> Probabilities) Score(IStudentClassifier student, Dataset part, LabelSet labels)
    {
        var probabilities = ClassificationMetrics.ToDouble(student.PredictProbabilities(part.Examples.Select(e => e.Text).ToList()));
        return (ClassificationMetrics.Evaluate(part, probabilities, labels), probabilities);
    }
}
