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
