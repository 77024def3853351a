using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;

namespace Pgkd.Core.Teacher;

/// <summary>Everything a round's prompt is built from.</summary>
public sealed record TeacherPromptInput
{
    public required LabelSet Labels { get; init; }

    /// <summary>What the classifier does, in a sentence, e.g. "Classify news articles by topic."</summary>
    public required string TaskDescription { get; init; }

    /// <summary>Examples per label in label-set order; their sum is the number requested.</summary>
    public required IReadOnlyList<int> Allocation { get; init; }

    /// <summary>Training examples the few-shot examples are drawn from (seeded).</summary>
    public IReadOnlyList<LabeledExample> FewShotPool { get; init; } = [];

    /// <summary>The latest validation report; shown only with <see cref="TeacherPromptOptions.IncludeValidationReport"/>.</summary>
    public ValidationReport? Report { get; init; }

    /// <summary>Hard negatives and prediction samples from the miner; shown only with <see cref="TeacherPromptOptions.IncludeHardNegatives"/>.</summary>
    public HardNegativeSelection? Selection { get; init; }

    public int Round { get; init; }

    /// <summary>Seed of the request (the few-shot picks, unless <see cref="FewShotSeed"/> is set).</summary>
    public int Seed { get; init; }

    /// <summary>
    /// Seed of the few-shot picks when set: one seed for a whole run gives every request the same few-shot examples,
    /// so the unchanging start of the prompt (role, task, labels, reply format, examples) is one shared prefix that
    /// prompt caches bill at the cached rate.
    /// </summary>
    public int? FewShotSeed { get; init; }

    /// <summary>
    /// The floor and cap the round's whole allocation kept to (<see cref="RunPlanner"/>); stated in the request so the teacher
    /// reads this request's counts as its share of a bounded round. Null: not stated (random augmentation).
    /// </summary>
    public AllocationBounds? RoundBounds { get; init; }
}

/// <summary>Switches and limits; the two Include switches are the paper's ablations.</summary>
public sealed record TeacherPromptOptions
{
    /// <summary>Show the per-class validation report (ablation: "without the validation report").</summary>
    public bool IncludeValidationReport { get; init; } = true;

    /// <summary>Show hard negatives and the correct/incorrect samples (ablation: "without hard negatives").</summary>
    public bool IncludeHardNegatives { get; init; } = true;

    public int FewShotPerClass { get; init; } = 3;

    /// <summary>Prompt budget in tokens, as counted by the tokenizer given to <see cref="TeacherPromptBuilder.Build"/>.</summary>
    public int MaxPromptTokens { get; init; } = 8000;

    /// <summary>Longer example texts are shortened with "…" in the prompt.</summary>
    public int MaxExampleChars { get; init; } = 400;

    public static TeacherPromptOptions Default { get; } = new();
}

/// <summary>What was dropped to fit the token budget.</summary>
public sealed record PromptTrimming(int FewShotDropped, int SamplesDropped, int HardNegativesDropped)
{
    public bool Any => FewShotDropped + SamplesDropped + HardNegativesDropped > 0;
}

/// <summary>
/// A built prompt: the system and user messages for a chat API, the guidance JSON that is also
/// embedded in <see cref="User"/>, and the estimated size. WithinBudget is false only when even the
/// prompt with every optional example removed is over the budget.
/// </summary>
public sealed record TeacherPrompt(
    string System,
    string User,
    string GuidanceJson,
    int EstimatedTokens,
    bool WithinBudget,
    PromptTrimming Trimming);
