using System.Text;
using Pgkd.Core.Data;
using Pgkd.Core.Metrics;

namespace Pgkd.Core.Tests;

/// <summary>Small builders shared by the tests.</summary>
internal static class TestSupport
{
    public static readonly LabelSet Abc = new("A", "B", "C");

    public static Stream StreamOf(string content) => new MemoryStream(Encoding.UTF8.GetBytes(content));

    /// <summary>A report whose only interesting part is per-class F1 (and optionally loss/accuracy).</summary>
    public static ValidationReport ReportWithF1(double[] f1, double loss = 0.5, double accuracy = 0.8, string[]? names = null) =>
        new(
            Count: 100,
            Accuracy: accuracy,
            PerClass: f1.Select((x, i) => new ClassMetrics(names?[i] ?? $"L{i}", x, x, x, 25)).ToArray(),
            MacroF1: f1.Average(),
            WeightedF1: f1.Average(),
            ConfusionMatrix: f1.Select(_ => (IReadOnlyList<int>)new int[f1.Length]).ToArray(),
            MeanCrossEntropy: loss,
            ExpectedCalibrationError: 0);

    public static ValidationReport ReportWithLoss(double loss) => ReportWithF1([0.8, 0.8, 0.8, 0.8], loss);
}
