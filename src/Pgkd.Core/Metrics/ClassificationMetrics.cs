using Pgkd.Core.Data;

namespace Pgkd.Core.Metrics;

/// <summary>
/// Computes a <see cref="ValidationReport"/> from true label indices and the student's predicted
/// probabilities (one row per example, one column per label in <see cref="LabelSet"/> order).
/// Conventions follow scikit-learn: the prediction is the arg-max (first index on ties);
/// precision, recall and F1 are 0 where their denominator is 0 (zero_division=0); macro F1
/// averages over the labels that occur in the true labels or the predictions (sklearn's default
/// label set), so a perfect classifier scores 1.0 even when validation lacks a class.
/// </summary>
public static class ClassificationMetrics
{
    /// <summary>Probabilities are clamped here before the log so one confident miss cannot give an infinite loss.</summary>
    public const double ProbabilityFloor = 1e-12;

    /// <summary>Number of equal-width confidence bins for the expected calibration error.</summary>
    public const int CalibrationBins = 15;

    /// <summary>Scores a student's probabilities for <paramref name="dataset"/>'s texts against their own labels.</summary>
    public static ValidationReport Evaluate(Dataset dataset, IReadOnlyList<IReadOnlyList<double>> probabilities, LabelSet labels) =>
        Evaluate(dataset.LabelIndices(labels), probabilities, labels);

    public static ValidationReport Evaluate(
        IReadOnlyList<int> trueLabels, IReadOnlyList<IReadOnlyList<double>> probabilities, LabelSet labels)
    {
        Validate(trueLabels, probabilities, labels);
        var k = labels.Count;
        var n = trueLabels.Count;
        var confusion = new int[k][];
        for (var i = 0; i < k; i++) confusion[i] = new int[k];
        double crossEntropy = 0;
        var binCount = new int[CalibrationBins];
        var binConfidence = new double[CalibrationBins];
        var binCorrect = new int[CalibrationBins];

        for (var i = 0; i < n; i++)
        {
            var row = probabilities[i];
            var predicted = ArgMax(row);
            var truth = trueLabels[i];
            confusion[truth][predicted]++;
            crossEntropy -= Math.Log(Math.Max(row[truth], ProbabilityFloor));
            var confidence = row[predicted];
            var bin = CalibrationBin(confidence);
            binCount[bin]++;
            binConfidence[bin] += confidence;
            if (predicted == truth) binCorrect[bin]++;
        }

        var perClass = new ClassMetrics[k];
        var correct = 0;
        double macroSum = 0, weightedSum = 0;
        var present = 0;
        for (var c = 0; c < k; c++)
        {
            var tp = confusion[c][c];
            var support = confusion[c].Sum();
            var predictedAsC = 0;
            for (var t = 0; t < k; t++) predictedAsC += confusion[t][c];
            var fp = predictedAsC - tp;
            var fn = support - tp;
            var precision = predictedAsC == 0 ? 0 : (double)tp / predictedAsC;
            var recall = support == 0 ? 0 : (double)tp / support;
            var f1Denominator = 2 * tp + fp + fn;
            var f1 = f1Denominator == 0 ? 0 : 2.0 * tp / f1Denominator;
            perClass[c] = new ClassMetrics(labels[c], precision, recall, f1, support);
            correct += tp;
            weightedSum += f1 * support;
            if (support > 0 || predictedAsC > 0)
            {
                macroSum += f1;
                present++;
            }
        }

        double ece = 0;
        for (var b = 0; b < CalibrationBins; b++)
        {
            if (binCount[b] == 0) continue;
            var gap = Math.Abs((double)binCorrect[b] / binCount[b] - binConfidence[b] / binCount[b]);
            ece += (double)binCount[b] / n * gap;
        }

        return new ValidationReport(
            Count: n,
            Accuracy: (double)correct / n,
            PerClass: perClass,
            MacroF1: macroSum / present,
            WeightedF1: weightedSum / n,
            ConfusionMatrix: confusion,
            MeanCrossEntropy: crossEntropy / n,
            ExpectedCalibrationError: ece);
    }

    /// <summary>Index of the largest probability; the first one on ties (as numpy.argmax).</summary>
    public static int ArgMax(IReadOnlyList<double> row)
    {
        var best = 0;
        for (var i = 1; i < row.Count; i++)
            if (row[i] > row[best]) best = i;
        return best;
    }

    /// <summary>Bins are (b/15, (b+1)/15]; a confidence of exactly 0 falls in the first bin.</summary>
    public static int CalibrationBin(double confidence) =>
        Math.Clamp((int)Math.Ceiling(confidence * CalibrationBins) - 1, 0, CalibrationBins - 1);

    /// <summary>Converts ONNX-style float rows to the double rows the metrics take.</summary>
    public static IReadOnlyList<IReadOnlyList<double>> ToDouble(IEnumerable<IReadOnlyList<float>> rows) =>
        rows.Select(r => (IReadOnlyList<double>)r.Select(x => (double)x).ToArray()).ToArray();

    private static void Validate(IReadOnlyList<int> trueLabels, IReadOnlyList<IReadOnlyList<double>> probabilities, LabelSet labels)
    {
        ArgumentNullException.ThrowIfNull(trueLabels);
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(labels);
        if (trueLabels.Count == 0)
            throw new ArgumentException("There must be at least one example to evaluate.", nameof(trueLabels));
        if (trueLabels.Count != probabilities.Count)
            throw new ArgumentException($"{trueLabels.Count} true labels but {probabilities.Count} probability rows.", nameof(probabilities));
        for (var i = 0; i < trueLabels.Count; i++)
        {
            if (trueLabels[i] < 0 || trueLabels[i] >= labels.Count)
                throw new ArgumentException($"True label {trueLabels[i]} of example {i} is outside 0..{labels.Count - 1}.", nameof(trueLabels));
            ValidateRow(probabilities[i], i, labels.Count);
        }
    }

    internal static void ValidateRow(IReadOnlyList<double>? row, int example, int labelCount)
    {
        if (row is null || row.Count != labelCount)
            throw new ArgumentException($"Probability row {example} has {row?.Count ?? 0} values, expected {labelCount} (one per label).", "probabilities");
        for (var c = 0; c < row.Count; c++)
        {
            var p = row[c];
            // Rows need not sum to 1 exactly (float softmax), but each value must be a probability.
            if (!double.IsFinite(p) || p < 0 || p > 1 + 1e-6)
                throw new ArgumentException($"Probability row {example}, label {c} is {p}, not a probability in [0, 1].", "probabilities");
        }
    }
}
