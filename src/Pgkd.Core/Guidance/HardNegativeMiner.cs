using Pgkd.Core.Data;
using Pgkd.Core.Metrics;

namespace Pgkd.Core.Guidance;

/// <summary>
/// Picks the student's confident mistakes (hard negatives) and a few correct and incorrect
/// predictions from evaluated examples. Deterministic: ranking ties go to the earlier example, and
/// the samples come from <see cref="SeededRandom"/> streams derived from the options' seed.
/// </summary>
public static class HardNegativeMiner
{
    /// <summary>
    /// Mines from the source <paramref name="options"/> names: the <paramref name="validation"/> examples, the <paramref name="training"/>
    /// examples, or both ranked together by the student's confidence in its wrong answer (validation first on ties). Each is the
    /// examples with the student's probabilities for them, row for row.
    /// </summary>
    public static HardNegativeSelection MineFromSource(
        HardNegativeOptions options,
        LabelSet labels,
        (IReadOnlyList<LabeledExample> Examples, IReadOnlyList<IReadOnlyList<double>> Probabilities) validation,
        (IReadOnlyList<LabeledExample> Examples, IReadOnlyList<IReadOnlyList<double>> Probabilities)? training)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MinesTraining && training is null)
            throw new ArgumentException($"Hard negatives from {options.Source} need the round's training data and the student's probabilities for it.", nameof(training));
        return options.Source switch
        {
            HardNegativeSource.Training => Mine(training!.Value.Examples, training.Value.Probabilities, labels, options),
            HardNegativeSource.Both => Mine([.. validation.Examples, .. training!.Value.Examples],
                [.. validation.Probabilities, .. training.Value.Probabilities], labels, options),
            _ => Mine(validation.Examples, validation.Probabilities, labels, options),
        };
    }

    public static HardNegativeSelection Mine(
        IReadOnlyList<LabeledExample> examples,
        IReadOnlyList<IReadOnlyList<double>> probabilities,
        LabelSet labels,
        HardNegativeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(probabilities);
        ArgumentNullException.ThrowIfNull(labels);
        options ??= HardNegativeOptions.Default;
        var problems = options.Validate();
        if (problems.Count > 0) throw new ArgumentException(string.Join("; ", problems), nameof(options));
        if (examples.Count != probabilities.Count)
            throw new ArgumentException($"{examples.Count} examples but {probabilities.Count} probability rows.", nameof(probabilities));

        var correct = new List<PredictionSample>();
        var wrong = new List<(int Index, PredictionSample Sample)>();
        for (var i = 0; i < examples.Count; i++)
        {
            var truth = labels.IndexOf(examples[i].Label);
            if (truth < 0)
                throw new ArgumentException($"Example {i} has label \"{examples[i].Label}\", not in the label set ({labels}).", nameof(examples));
            ClassificationMetrics.ValidateRow(probabilities[i], i, labels.Count);
            var predicted = ClassificationMetrics.ArgMax(probabilities[i]);
            var sample = new PredictionSample(examples[i].Text, labels[truth], labels[predicted], probabilities[i][predicted]);
            if (predicted == truth) correct.Add(sample);
            else wrong.Add((i, sample));
        }

        var perClass = new Dictionary<string, int>(StringComparer.Ordinal);
        var hard = wrong
            .Where(w => w.Sample.Confidence >= options.Threshold)
            .OrderByDescending(w => w.Sample.Confidence)
            .ThenBy(w => w.Index)
            .Where(w =>
            {
                var taken = perClass.GetValueOrDefault(w.Sample.TrueLabel);
                if (taken >= options.MaxPerClass) return false;
                perClass[w.Sample.TrueLabel] = taken + 1;
                return true;
            })
            .Take(options.TopK)
            .ToList();

        var hardIndices = hard.Select(h => h.Index).ToHashSet();
        var otherWrong = wrong.Where(w => !hardIndices.Contains(w.Index)).Select(w => w.Sample).ToList();
        // Separate streams: asking for more correct samples must not change the incorrect ones.
        var seed = unchecked((ulong)options.Seed);
        var correctSamples = new SeededRandom(SeededRandom.Derive(seed, 1)).Sample(correct, options.CorrectSamples);
        var incorrectSamples = new SeededRandom(SeededRandom.Derive(seed, 2)).Sample(otherWrong, options.IncorrectSamples);

        return new HardNegativeSelection(
            hard.Select(h => new HardNegative(h.Sample.Text, h.Sample.TrueLabel, h.Sample.PredictedLabel, h.Sample.Confidence)).ToArray(),
            correctSamples,
            incorrectSamples);
    }
}
