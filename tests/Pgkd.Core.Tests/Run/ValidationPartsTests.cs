using Pgkd.Core.Data;
using Pgkd.Core.Run;

namespace Pgkd.Core.Tests.Run;

public class ValidationPartsTests
{
    private static Dataset Validation(int perLabel) => new(
        Enumerable.Range(0, perLabel).SelectMany(i => new[] { "World", "Sports", "Business", "Sci/Tech" }
            .Select(l => new LabeledExample($"{l} text number {i}", l))));

    [Fact]
    public void The_split_is_stratified_disjoint_complete_and_repeats_for_the_same_seed()
    {
        var config = RunConfiguration.Default with { SelectionShare = 0.5, Seed = 7 };
        var parts = config.SplitValidation(Validation(10));
        Assert.True(parts.IsSplit);
        Assert.Equal(20, parts.Feedback.Count);
        Assert.Equal(20, parts.Selection.Count);
        foreach (var label in new[] { "World", "Sports", "Business", "Sci/Tech" })
        {
            Assert.Equal(5, parts.Feedback.Examples.Count(e => e.Label == label));
            Assert.Equal(5, parts.Selection.Examples.Count(e => e.Label == label));
        }
        Assert.Empty(parts.Feedback.Examples.Select(e => e.Text).Intersect(parts.Selection.Examples.Select(e => e.Text)));
        Assert.Equal(parts.Selection.Examples, config.SplitValidation(Validation(10)).Selection.Examples);
        Assert.NotEqual(parts.Selection.Examples, (config with { Seed = 8 }).SplitValidation(Validation(10)).Selection.Examples);
    }

    [Fact]
    public void Share_zero_is_the_papers_single_validation_set()
    {
        var whole = Validation(3);
        var parts = (RunConfiguration.Default with { SelectionShare = 0 }).SplitValidation(whole);
        Assert.False(parts.IsSplit);
        Assert.Same(whole, parts.Feedback);
        Assert.Same(whole, parts.Selection);
    }

    [Fact]
    public void A_part_without_a_label_is_refused_with_the_label_named()
    {
        var data = new Dataset(Validation(4).Examples.Append(new LabeledExample("a lonely label", "Rare")));
        var error = Assert.Throws<ArgumentException>(() => (RunConfiguration.Default with { SelectionShare = 0.5 }).SplitValidation(data));
        Assert.Contains("\"Rare\"", error.Message);
        Assert.Contains("SelectionShare", error.Message);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void Invalid_shares_are_named(double share)
    {
        var errors = (RunConfiguration.Default with { SelectionShare = share }).Validate();
        Assert.Contains(errors, e => e.StartsWith("SelectionShare must be", StringComparison.Ordinal));
    }

    [Fact]
    public void Allocation_follows_the_feedback_report_and_stopping_the_selection_report()
    {
        var config = RunConfiguration.Default with { SamplesPerRound = 20, FloorPerClass = 2, Patience = 2, MaxRounds = 4 };
        var selection = TestSupport.ReportWithF1([0.9, 0.9, 0.9, 0.9], loss: 0.3, accuracy: 0.9);
        var feedback = TestSupport.ReportWithF1([0.9, 0.6, 0.9, 0.9], loss: 0.5, accuracy: 0.8);
        var (progress, step) = RunPlanner.Next(config, RunProgress.Start(config), new RoundOutcome(0, selection, FeedbackReport: feedback));
        Assert.Equal([4, 8, 4, 4], Assert.IsType<RunStep.GenerateRound>(step).Allocation);
        Assert.Equal(0.9, progress.Stopping.BestValue, 6);
        Assert.Equal(0.3, progress.Stopping.BestTieBreak, 6);
    }

    [Fact]
    public void Unset_the_share_follows_the_validation_sets_size_as_measured()
    {
        // docs/results.md: a 100-text selection part (200 validation texts) was the less honest judge, so below
        // 1,000 texts one set does both jobs; from 1,000 up the selection part holds 500 texts.
        Assert.Null(RunConfiguration.Default.SelectionShare);
        Assert.Equal(0, RunConfiguration.SelectionShareFor(200));
        Assert.Equal(0, RunConfiguration.SelectionShareFor(999));
        Assert.Equal(0.5, RunConfiguration.SelectionShareFor(1000));
        Assert.False(RunConfiguration.Default.SplitValidation(Validation(10)).IsSplit);
        Assert.True(RunConfiguration.Default.SplitValidation(Validation(250)).IsSplit);
        Assert.Equal(0, RunConfiguration.Default.WithSelectionShareFor(40).SelectionShare);
        Assert.Equal(0.3, (RunConfiguration.Default with { SelectionShare = 0.3 }).WithSelectionShareFor(40).SelectionShare);
        Assert.Empty(RunConfiguration.Default.Validate());
    }
}
