namespace Pgkd.Core.Guidance;

/// <summary>
/// A validation example the student got wrong; Confidence is the probability it gave its wrong
/// answer. High-confidence mistakes are what the teacher is asked to write against.
/// </summary>
public sealed record HardNegative(string Text, string TrueLabel, string PredictedLabel, double Confidence);

/// <summary>A student prediction shown to the teacher as an example of what it gets right or wrong.</summary>
public sealed record PredictionSample(string Text, string TrueLabel, string PredictedLabel, double Confidence)
{
    public bool IsCorrect => string.Equals(TrueLabel, PredictedLabel, StringComparison.Ordinal);
}

/// <summary>What the miner picked for one round's prompt.</summary>
public sealed record HardNegativeSelection(
    IReadOnlyList<HardNegative> HardNegatives,
    IReadOnlyList<PredictionSample> CorrectSamples,
    IReadOnlyList<PredictionSample> IncorrectSamples)
{
    public static HardNegativeSelection Empty { get; } = new([], [], []);
}
