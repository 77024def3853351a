using Pgkd.Core.Guidance;
using Pgkd.Core.Run;

namespace Pgkd.Core.Tests.Run;

public class RunConfigurationTests
{
    [Fact]
    public void Defaults_are_the_unofficial_ones_and_valid()
    {
        var c = RunConfiguration.Default;
        Assert.Equal(10, c.MaxRounds);
        Assert.Equal(5, c.Patience);
        Assert.Equal(16, c.SamplesPerRound);
        Assert.Equal(16, c.HardNegatives.TopK);
        Assert.Equal(0.5, c.HardNegatives.Threshold);
        Assert.Equal(StoppingMetric.Accuracy, c.StoppingMetric);
        Assert.Equal(RunStrategy.Pgkd, c.Strategy);
        Assert.Empty(c.Validate(classCount: 4));
        Assert.Same(c, c.EnsureValid());
    }

    [Theory]
    [InlineData("MaxRounds", "MaxRounds must be between 1 and 100, was 0")]
    [InlineData("SamplesPerRound", "SamplesPerRound must be between 1 and 100000, was 0")]
    [InlineData("Patience", "Patience must be between 1 and 100, was 0")]
    [InlineData("MinDelta", "MinDelta must be a finite number of 0 or more, was -0.1")]
    [InlineData("FewShotPerClass", "FewShotPerClass must be between 0 and 50, was 51")]
    [InlineData("MaxPromptTokens", "MaxPromptTokens must be between 256 and 2000000, was 10")]
    [InlineData("TeacherTokenBudget", "TeacherTokenBudget must be between 1 and 9223372036854775807, was 0")]
    [InlineData("TeacherCostBudgetUsd", "TeacherCostBudgetUsd must be more than 0, was -1")]
    [InlineData("MaxTextLength", "MaxTextLength must be between 1 and 100000, was 0")]
    [InlineData("MinTextLength", "MinTextLength must be between 0 and 2000, was 3000")]
    [InlineData("FloorPerClass", "FloorPerClass must be between 0 and 100000, was -1")]
    [InlineData("AllocationSmoothing", "AllocationSmoothing must be a positive number, was 0")]
    [InlineData("StoppingMetric", "StoppingMetric is not a known metric: 99")]
    [InlineData("Strategy", "Strategy is not a known strategy: 7")]
    [InlineData("HardNegatives", "HardNegatives.TopK must be 0 or more, was -1")]
    public void Each_bad_field_is_named(string field, string message)
    {
        var c = field switch
        {
            "MaxRounds" => RunConfiguration.Default with { MaxRounds = 0 },
            "SamplesPerRound" => RunConfiguration.Default with { SamplesPerRound = 0 },
            "Patience" => RunConfiguration.Default with { Patience = 0 },
            "MinDelta" => RunConfiguration.Default with { MinDelta = -0.1 },
            "FewShotPerClass" => RunConfiguration.Default with { FewShotPerClass = 51 },
            "MaxPromptTokens" => RunConfiguration.Default with { MaxPromptTokens = 10 },
            "TeacherTokenBudget" => RunConfiguration.Default with { TeacherTokenBudget = 0 },
            "TeacherCostBudgetUsd" => RunConfiguration.Default with { TeacherCostBudgetUsd = -1 },
            "MaxTextLength" => RunConfiguration.Default with { MaxTextLength = 0, MinTextLength = 0 },
            "MinTextLength" => RunConfiguration.Default with { MinTextLength = 3000 },
            "FloorPerClass" => RunConfiguration.Default with { FloorPerClass = -1 },
            "AllocationSmoothing" => RunConfiguration.Default with { AllocationSmoothing = 0 },
            "StoppingMetric" => RunConfiguration.Default with { StoppingMetric = (StoppingMetric)99 },
            "Strategy" => RunConfiguration.Default with { Strategy = (RunStrategy)7 },
            "HardNegatives" => RunConfiguration.Default with { HardNegatives = new HardNegativeOptions { TopK = -1 } },
            _ => throw new ArgumentOutOfRangeException(nameof(field)),
        };
        Assert.Equal([message], c.Validate());
        Assert.Contains(message, Assert.Throws<ArgumentException>(() => c.EnsureValid()).Message);
    }

    [Fact]
    public void Floor_is_checked_against_the_classes_when_known()
    {
        var c = RunConfiguration.Default with { SamplesPerRound = 16, FloorPerClass = 5 };
        Assert.Empty(c.Validate());
        Assert.Equal(["SamplesPerRound (16) is less than FloorPerClass (5) × 4 classes"], c.Validate(classCount: 4));
    }

    [Fact]
    public void Derived_options_follow_the_configuration()
    {
        var c = RunConfiguration.Default with { Patience = 3, MinDelta = 0.01, StoppingMetric = StoppingMetric.MacroF1, MaxRounds = 7, FewShotPerClass = 2, MaxPromptTokens = 999 };
        Assert.Equal(new EarlyStoppingOptions { Patience = 3, MinDelta = 0.01, Metric = StoppingMetric.MacroF1, MaxRounds = 7 }, c.EarlyStoppingOptions);
        Assert.Equal(2, c.PromptOptions.FewShotPerClass);
        Assert.Equal(999, c.PromptOptions.MaxPromptTokens);
    }

    [Fact]
    public void Prompt_switches_follow_the_ablations_and_random_augmentation_turns_all_guidance_off()
    {
        Assert.True(RunConfiguration.Default.PromptOptions is { IncludeValidationReport: true, IncludeHardNegatives: true });
        Assert.True((RunConfiguration.Default with { IncludeValidationReport = false }).PromptOptions is { IncludeValidationReport: false, IncludeHardNegatives: true });
        Assert.True((RunConfiguration.Default with { IncludeHardNegatives = false }).PromptOptions is { IncludeValidationReport: true, IncludeHardNegatives: false });
        Assert.True((RunConfiguration.Default with { Strategy = RunStrategy.RandomAugmentation }).PromptOptions is { IncludeValidationReport: false, IncludeHardNegatives: false });
    }

    [Fact]
    public void Reply_context_carries_the_text_limits_and_the_hashes()
    {
        var c = RunConfiguration.Default with { MinTextLength = 7, MaxTextLength = 300, SamplesPerRound = 32 };
        var training = new HashSet<string> { "t" };
        var heldOut = new HashSet<string> { "h" };
        var context = c.ReplyContext(AgNews.Labels, training, heldOut);
        Assert.Equal((7, 300, 32), (context.MinTextLength, context.MaxTextLength, context.MaxItems));
        Assert.Same(training, context.TrainingHashes);
        Assert.Same(heldOut, context.HeldOutHashes);
        Assert.Same(AgNews.Labels, context.Labels);
        Assert.Equal(8, c.ReplyContext(AgNews.Labels, training, heldOut, maxItems: 8).MaxItems);
    }

    [Fact]
    public void Round_seeds_are_reproducible_and_differ_by_round_and_run_seed()
    {
        var c = RunConfiguration.Default;
        Assert.Equal(c.SeedForRound(3), c.SeedForRound(3));
        Assert.NotEqual(c.SeedForRound(3), c.SeedForRound(4));
        Assert.NotEqual(c.SeedForRound(3), (c with { Seed = 7 }).SeedForRound(3));
        Assert.Equal(c.SeedForRound(2), c.HardNegativeOptionsForRound(2).Seed);
        Assert.Equal(c.HardNegatives.TopK, c.HardNegativeOptionsForRound(2).TopK);
    }
}
