namespace Pgkd.Storage.Tests;

public class StudentSettingsTests
{
    [Fact]
    public void Full_mode_trains_round_zero_longer_then_one_epoch_a_round_continuing()
    {
        var full = new StudentSettings { Mode = "full" };
        Assert.Equal(3, full.EpochsFor(0));
        Assert.Equal(1, full.EpochsFor(1));
        Assert.Equal(1, full.EpochsFor(6));
        Assert.True(full.ContinuesFromPreviousRound);
        Assert.Equal(5e-5, full.Rate);
        Assert.Equal(7, (full with { SeedEpochs = 7 }).EpochsFor(0));
        Assert.Equal(2, (full with { EpochsPerRound = 2 }).EpochsFor(3));
    }

    [Fact]
    public void Head_mode_trains_a_fresh_head_the_same_way_every_round()
    {
        var head = new StudentSettings();
        Assert.Equal(30, head.EpochsFor(0));
        Assert.Equal(30, head.EpochsFor(4));
        Assert.False(head.ContinuesFromPreviousRound);
        Assert.Equal(12, (head with { EpochsPerRound = 12 }).EpochsFor(0));
    }

    [Fact]
    public void Seed_epochs_out_of_range_are_named()
    {
        Assert.Contains(new StudentSettings { SeedEpochs = 0 }.Validate(), p => p.StartsWith("SeedEpochs must be between 1 and 200", StringComparison.Ordinal));
        Assert.Empty(new StudentSettings { SeedEpochs = 5 }.Validate());
    }
}

public class StudentSettingsStoppingTests
{
    [Fact]
    public void Stopping_within_a_round_makes_the_epochs_a_cap_with_a_default_per_mode()
    {
        var full = new StudentSettings { Mode = "full" };
        Assert.False(full.StopsWithinRound);
        Assert.Equal(3, full.EpochCapFor(0)); // no stopping: the planned epochs
        Assert.Equal(1, full.EpochCapFor(2));
        Assert.False((full with { ValidationPatience = 0 }).StopsWithinRound);
        var stopping = full with { ValidationPatience = 2 };
        Assert.True(stopping.StopsWithinRound);
        Assert.Equal(10, stopping.EpochCapFor(0));
        Assert.Equal(10, stopping.EpochCapFor(3));
        Assert.Equal(60, new StudentSettings { ValidationPatience = 1 }.EpochCapFor(0));
        Assert.Equal(25, (stopping with { MaxEpochs = 25 }).EpochCapFor(1));
    }

    [Fact]
    public void Stopping_and_batch_settings_out_of_range_are_named()
    {
        Assert.Contains(new StudentSettings { ValidationPatience = -1 }.Validate(), p => p.StartsWith("ValidationPatience must be between 0 and 50", StringComparison.Ordinal));
        Assert.Contains(new StudentSettings { MaxEpochs = 0 }.Validate(), p => p.StartsWith("MaxEpochs must be between 1 and 200", StringComparison.Ordinal));
        Assert.Empty(new StudentSettings { ValidationPatience = 3, MaxEpochs = 20, ClassBalancedBatches = true }.Validate());
        // Settings that stopping within a round would silently ignore are named.
        Assert.Contains(new StudentSettings { MaxEpochs = 20 }.Validate(), p => p.StartsWith("MaxEpochs caps a round that stops on validation loss", StringComparison.Ordinal));
        Assert.Contains(new StudentSettings { ValidationPatience = 2, EpochsPerRound = 5 }.Validate(), p => p.StartsWith("EpochsPerRound and seedEpochs do not apply", StringComparison.Ordinal));
        Assert.Contains(new StudentSettings { ValidationPatience = 2, SeedEpochs = 5 }.Validate(), p => p.StartsWith("EpochsPerRound and seedEpochs do not apply", StringComparison.Ordinal));
        Assert.Contains(new StudentSettings { ValidationPatience = 2, StepsPerClass = 8 }.Validate(), p => p.StartsWith("StepsPerClass does not apply", StringComparison.Ordinal));
        Assert.Empty(new StudentSettings { ValidationPatience = 0, EpochsPerRound = 5 }.Validate());
        Assert.True(new StudentSettings { ClassBalancedBatches = true }.BalancesClasses);
        Assert.False(new StudentSettings().BalancesClasses);
    }
}
