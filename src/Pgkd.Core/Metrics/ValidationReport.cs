namespace Pgkd.Core.Metrics;

/// <summary>One class's scores; Support is how many examples truly have this label.</summary>
public sealed record ClassMetrics(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>
/// The student's "gradual evaluation check" on validation: what the teacher is shown and what
/// early stopping watches. ConfusionMatrix[t][p] counts examples of true label t predicted as p.
/// </summary>
public sealed record ValidationReport(
    int Count,
    double Accuracy,
    IReadOnlyList<ClassMetrics> PerClass,
    double MacroF1,
    double WeightedF1,
    IReadOnlyList<IReadOnlyList<int>> ConfusionMatrix,
    double MeanCrossEntropy,
    double ExpectedCalibrationError)
{
    /// <summary>The validation loss of the paper: mean cross-entropy of the true label.</summary>
    public double ValidationLoss => MeanCrossEntropy;

    /// <summary>Per-class F1 in label order, the input of <see cref="Guidance.ClassAllocation"/>.</summary>
    public IReadOnlyList<double> F1ByClass => PerClass.Select(c => c.F1).ToArray();
}
