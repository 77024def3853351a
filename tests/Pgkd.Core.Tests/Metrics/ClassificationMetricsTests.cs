using CsCheck;
using Pgkd.Core.Data;
using Pgkd.Core.Metrics;

namespace Pgkd.Core.Tests.Metrics;

public class ClassificationMetricsTests
{
    private const double Eps = 1e-9;

    // Worked by hand. y_true = A A A B B C, y_pred (arg-max) = A A B B C C.
    // scikit-learn gives the same: precision_recall_fscore_support(y_true, y_pred) ->
    // precision [1, .5, .5], recall [.6667, .5, 1], f1 [.8, .5, .6667], support [3, 2, 1];
    // f1 macro .65556, weighted .67778; accuracy .66667; log_loss .62189 (rows sum to 1).
    private static readonly int[] HandTruth = [0, 0, 0, 1, 1, 2];
    private static readonly double[][] HandProbabilities =
    [
        [0.72, 0.18, 0.10], // A -> A, confidence .72 (bin 10)
        [0.55, 0.25, 0.20], // A -> A, .55 (bin 8)
        [0.30, 0.62, 0.08], // A -> B, .62 (bin 9), wrong
        [0.09, 0.81, 0.10], // B -> B, .81 (bin 12)
        [0.18, 0.30, 0.52], // B -> C, .52 (bin 7), wrong
        [0.07, 0.10, 0.83], // C -> C, .83 (bin 12)
    ];

    private static ValidationReport Hand() => ClassificationMetrics.Evaluate(HandTruth, HandProbabilities, TestSupport.Abc);

    [Fact]
    public void A_dataset_is_scored_against_its_own_labels()
    {
        var names = new[] { "A", "B", "C" };
        var dataset = new Dataset(HandTruth.Select((t, i) => new LabeledExample($"text {i}", names[t])));
        var report = ClassificationMetrics.Evaluate(dataset, HandProbabilities, TestSupport.Abc);
        Assert.Equal(Hand(), report, (x, y) => x.Accuracy == y.Accuracy && x.MeanCrossEntropy == y.MeanCrossEntropy
            && x.ConfusionMatrix.Zip(y.ConfusionMatrix).All(r => r.First.SequenceEqual(r.Second)));
        Assert.Equal(4.0 / 6, report.Accuracy, Eps);
    }

    [Fact]
    public void Hand_worked_counts_accuracy_and_confusion()
    {
        var r = Hand();
        Assert.Equal(6, r.Count);
        Assert.Equal(4.0 / 6, r.Accuracy, Eps);
        Assert.Equal([2, 1, 0], r.ConfusionMatrix[0]);
        Assert.Equal([0, 1, 1], r.ConfusionMatrix[1]);
        Assert.Equal([0, 0, 1], r.ConfusionMatrix[2]);
    }

    [Fact]
    public void Hand_worked_per_class_precision_recall_f1_support()
    {
        var r = Hand();
        Assert.Equal(Round(new ClassMetrics("A", 1.0, 2.0 / 3, 0.8, 3)), Round(r.PerClass[0]));
        Assert.Equal(Round(new ClassMetrics("B", 0.5, 0.5, 0.5, 2)), Round(r.PerClass[1]));
        Assert.Equal(Round(new ClassMetrics("C", 0.5, 1.0, 2.0 / 3, 1)), Round(r.PerClass[2]));
        Assert.Equal([0.8, 0.5, 2.0 / 3], r.F1ByClass.Select(x => Math.Round(x, 12)).ToArray(), (a, b) => Math.Abs(a - b) < Eps);
    }

    [Fact]
    public void Hand_worked_macro_and_weighted_f1()
    {
        var r = Hand();
        Assert.Equal((0.8 + 0.5 + 2.0 / 3) / 3, r.MacroF1, Eps);            // 0.655556
        Assert.Equal((0.8 * 3 + 0.5 * 2 + 2.0 / 3 * 1) / 6, r.WeightedF1, Eps); // 0.677778
    }

    [Fact]
    public void Hand_worked_cross_entropy_is_the_validation_loss()
    {
        var r = Hand();
        var expected = -(Math.Log(.72) + Math.Log(.55) + Math.Log(.30) + Math.Log(.81) + Math.Log(.30) + Math.Log(.83)) / 6;
        Assert.Equal(0.6218895476477792, expected, 1e-12);
        Assert.Equal(expected, r.MeanCrossEntropy, Eps);
        Assert.Equal(r.MeanCrossEntropy, r.ValidationLoss);
    }

    [Fact]
    public void Hand_worked_expected_calibration_error()
    {
        // Bins (15 wide): 7:{.52 wrong} 8:{.55 right} 9:{.62 wrong} 10:{.72 right} 12:{.81,.83 right}.
        // ECE = (.52 + .45 + .62 + .28)/6 + 2/6 * |1 - .82| = 0.371667.
        Assert.Equal(0.37166666666666665, Hand().ExpectedCalibrationError, Eps);
    }

    [Fact]
    public void Calibration_bins_are_right_closed()
    {
        Assert.Equal(0, ClassificationMetrics.CalibrationBin(0));
        Assert.Equal(0, ClassificationMetrics.CalibrationBin(1.0 / 15));
        Assert.Equal(1, ClassificationMetrics.CalibrationBin(1.0 / 15 + 1e-9));
        Assert.Equal(14, ClassificationMetrics.CalibrationBin(1));
    }

    [Fact]
    public void A_class_never_predicted_gets_precision_recall_f1_zero_like_sklearn_zero_division_0()
    {
        // y_true = A B C C, y_pred = A B B B. sklearn (zero_division=0): f1 [1, .5, 0], macro .5, weighted .375.
        var r = ClassificationMetrics.Evaluate([0, 1, 2, 2],
            [[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.2, 0.5, 0.3]], TestSupport.Abc);
        Assert.Equal(new ClassMetrics("C", 0, 0, 0, 2), r.PerClass[2]);
        Assert.Equal(1.0 / 3, r.PerClass[1].Precision, Eps);
        Assert.Equal(0.5, r.PerClass[1].F1, Eps);
        Assert.Equal(0.5, r.MacroF1, Eps);
        Assert.Equal(0.375, r.WeightedF1, Eps);
    }

    [Fact]
    public void Macro_f1_averages_only_labels_seen_in_truth_or_predictions_as_sklearn_does()
    {
        // Validation without any C, predicted perfectly: sklearn's default label set is {A, B} -> macro 1.0.
        var r = ClassificationMetrics.Evaluate([0, 1], [[0.9, 0.1, 0], [0.2, 0.7, 0.1]], TestSupport.Abc);
        Assert.Equal(1.0, r.MacroF1, Eps);
        Assert.Equal(0, r.PerClass[2].Support);
        Assert.Equal(0, r.PerClass[2].F1);
    }

    [Fact]
    public void Zero_probability_on_the_truth_is_clamped_not_infinite()
    {
        var r = ClassificationMetrics.Evaluate([0], [[0.0, 1.0, 0.0]], TestSupport.Abc);
        Assert.Equal(-Math.Log(1e-12), r.MeanCrossEntropy, 1e-9);
    }

    [Fact]
    public void ArgMax_takes_the_first_of_equal_maxima()
    {
        Assert.Equal(1, ClassificationMetrics.ArgMax([0.2, 0.4, 0.4]));
        Assert.Equal(2, ClassificationMetrics.ArgMax([0.2, 0.3, 0.5]));
    }

    [Fact]
    public void ToDouble_converts_float_rows()
    {
        var rows = ClassificationMetrics.ToDouble([new float[] { 0.25f, 0.75f }]);
        Assert.Equal([0.25, 0.75], rows[0]);
    }

    [Theory]
    [InlineData("lengths")]
    [InlineData("row width")]
    [InlineData("nan")]
    [InlineData("negative")]
    [InlineData("label range")]
    [InlineData("empty")]
    public void Validates_arguments(string what)
    {
        int[] truth = [0, 1];
        double[][] p = [[0.5, 0.5, 0], [0.1, 0.8, 0.1]];
        switch (what)
        {
            case "lengths": truth = [0]; break;
            case "row width": p[1] = [0.5, 0.5]; break;
            case "nan": p[0][1] = double.NaN; break;
            case "negative": p[0][2] = -0.1; break;
            case "label range": truth = [0, 3]; break;
            case "empty": truth = []; p = []; break;
        }
        Assert.Throws<ArgumentException>(() => ClassificationMetrics.Evaluate(truth, p, TestSupport.Abc));
    }

    // ---- properties ----

    private static readonly Gen<(int K, int[] Truth, double[][] Probabilities)> Problems =
        Gen.Int[2, 6].SelectMany(k => Gen.Int[1, 40].SelectMany(n =>
            Gen.Select(Gen.Int[0, k - 1].Array[n], Gen.Double[0.001, 1].Array[k].Array[n],
                (truth, raw) => (k, truth, raw.Select(r => r.Select(x => x / r.Sum()).ToArray()).ToArray()))));

    private static LabelSet LabelsOf(int k) => new(Enumerable.Range(0, k).Select(i => $"c{i}").ToArray());

    [Fact]
    public void Property_a_perfect_classifier_scores_one()
    {
        Problems.Sample((k, truth, probabilities) =>
        {
            // Put the largest mass on the true label.
            var perfect = truth.Select((t, i) => probabilities[i].Select((_, c) => c == t ? 0.9 : 0.1 / (k - 1)).ToArray()).ToArray();
            var r = ClassificationMetrics.Evaluate(truth, perfect, LabelsOf(k));
            Assert.Equal(1.0, r.Accuracy);
            Assert.Equal(1.0, r.MacroF1, Eps);
            Assert.Equal(1.0, r.WeightedF1, Eps);
            Assert.All(r.PerClass.Where(c => c.Support > 0), c => Assert.Equal(1.0, c.F1, Eps));
            Assert.Equal(-Math.Log(0.9), r.MeanCrossEntropy, Eps);
        }, iter: 200);
    }

    [Fact]
    public void Property_permuting_examples_changes_nothing()
    {
        Gen.Select(Problems, Gen.Int).Sample((problem, seed) =>
        {
            var (k, truth, probabilities) = problem;
            var order = Enumerable.Range(0, truth.Length).ToList();
            new SeededRandom(seed).Shuffle(order);
            var a = ClassificationMetrics.Evaluate(truth, probabilities, LabelsOf(k));
            var b = ClassificationMetrics.Evaluate(order.Select(i => truth[i]).ToArray(), order.Select(i => probabilities[i]).ToArray(), LabelsOf(k));
            Assert.Equal(a.Accuracy, b.Accuracy, Eps);
            Assert.Equal(a.MacroF1, b.MacroF1, Eps);
            Assert.Equal(a.WeightedF1, b.WeightedF1, Eps);
            Assert.Equal(a.MeanCrossEntropy, b.MeanCrossEntropy, Eps);
            Assert.Equal(a.ExpectedCalibrationError, b.ExpectedCalibrationError, Eps);
            Assert.Equal(a.PerClass.Select(Round), b.PerClass.Select(Round));
            for (var t = 0; t < k; t++) Assert.Equal(a.ConfusionMatrix[t], b.ConfusionMatrix[t]);
        }, iter: 200);
    }

    [Fact]
    public void Property_report_is_internally_consistent()
    {
        Problems.Sample((k, truth, probabilities) =>
        {
            var r = ClassificationMetrics.Evaluate(truth, probabilities, LabelsOf(k));
            Assert.Equal(truth.Length, r.ConfusionMatrix.Sum(row => row.Sum()));
            Assert.Equal(Enumerable.Range(0, k).Sum(c => r.ConfusionMatrix[c][c]) / (double)truth.Length, r.Accuracy, Eps);
            for (var c = 0; c < k; c++) Assert.Equal(truth.Count(t => t == c), r.PerClass[c].Support);
            foreach (var x in new[] { r.Accuracy, r.MacroF1, r.WeightedF1, r.ExpectedCalibrationError })
                Assert.InRange(x, 0, 1);
            Assert.True(r.MeanCrossEntropy >= 0);
            // Micro-averaged F1 equals accuracy for single-label classification.
            var tp = Enumerable.Range(0, k).Sum(c => r.ConfusionMatrix[c][c]);
            Assert.Equal(r.Accuracy, (double)tp / truth.Length, Eps);
        }, iter: 200);
    }

    private static ClassMetrics Round(ClassMetrics m) =>
        m with { Precision = Math.Round(m.Precision, 9), Recall = Math.Round(m.Recall, 9), F1 = Math.Round(m.F1, 9) };
}
