using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;

namespace Pgkd.Core.Teacher;

/// <summary>A label as the teacher sees it.</summary>
public sealed record GuidanceLabel(string Name, string? Description);

/// <summary>How many examples of one label the teacher is asked for.</summary>
public sealed record GuidanceAllocation(string Label, int Count);

/// <summary>The validation report as the teacher sees it.</summary>
public sealed record GuidanceMetrics(
    double Accuracy, double MacroF1, double WeightedF1, double ValidationLoss, IReadOnlyList<ClassMetrics> PerClass);

/// <summary>
/// The machine-readable twin of the prompt's prose, embedded in the user message as a fenced JSON
/// block. Any teacher (including the offline emulator) can read the same guidance a human-language
/// model reads. Sections left out by the ablation switches are null or empty.
/// </summary>
public sealed record PromptGuidance(
    string Schema,
    int Round,
    int RequestedCount,
    IReadOnlyList<GuidanceLabel> Labels,
    IReadOnlyList<GuidanceAllocation> Allocation,
    GuidanceMetrics? Validation,
    IReadOnlyList<HardNegative> HardNegatives,
    IReadOnlyList<HardNegative> CorrectSamples,
    IReadOnlyList<HardNegative> IncorrectSamples)
{
    public const string CurrentSchema = "pgkd-guidance/1";
}
