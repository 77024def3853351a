using Pgkd.Core.Run;

namespace Pgkd.Core.Tests.Run;

public class EarlyStoppingTests
{
    private static (EarlyStopping State, StopDecision[] Decisions) Feed(EarlyStoppingOptions options, params double[] values)
    {
        var state = EarlyStopping.Start(options);
        var decisions = new List<StopDecision>();
        for (var round = 0; round < values.Length; round++)
        {
            (state, var decision) = state.Observe(round, values[round]);
            decisions.Add(decision);
        }
        return (state, decisions.ToArray());
    }

    [Fact]
    public void Tracks_the_best_round_of_a_falling_then_rising_loss()
    {
        var (state, decisions) = Feed(new EarlyStoppingOptions { Metric = StoppingMetric.ValidationLoss, Patience = 2, MaxRounds = 10 }, 0.9, 0.7, 0.6, 0.65, 0.62);
        Assert.Equal(2, state.BestRound);
        Assert.Equal(0.6, state.BestValue);
        Assert.Equal(2, state.RoundsWithoutImprovement);
        Assert.Equal([StopDecision.Continue, StopDecision.Continue, StopDecision.Continue, StopDecision.Continue, StopDecision.StopPatienceExhausted], decisions);
    }

    [Fact]
    public void Improvements_smaller_than_min_delta_do_not_count()
    {
        var (state, decisions) = Feed(new EarlyStoppingOptions { Metric = StoppingMetric.ValidationLoss, Patience = 2, MinDelta = 0.05 }, 0.50, 0.47, 0.46);
        Assert.Equal(0, state.BestRound);
        Assert.Equal(StopDecision.StopPatienceExhausted, decisions[^1]);
        var (better, _) = Feed(new EarlyStoppingOptions { Metric = StoppingMetric.ValidationLoss, Patience = 2, MinDelta = 0.05 }, 0.50, 0.44);
        Assert.Equal(1, better.BestRound);
    }

    [Fact]
    public void Maximised_metrics_improve_upwards()
    {
        var (state, _) = Feed(new EarlyStoppingOptions { Metric = StoppingMetric.MacroF1 }, 0.80, 0.85, 0.83);
        Assert.Equal(1, state.BestRound);
        Assert.Equal(0.85, state.BestValue);
        Assert.False(new EarlyStoppingOptions { Metric = StoppingMetric.Accuracy }.Minimize);
        Assert.True(new EarlyStoppingOptions { Metric = StoppingMetric.ValidationLoss }.Minimize);
        Assert.False(new EarlyStoppingOptions().Minimize);
    }

    [Fact]
    public void An_accuracy_tie_goes_to_the_lower_loss_and_resets_patience()
    {
        var state = EarlyStopping.Start(new EarlyStoppingOptions { Metric = StoppingMetric.Accuracy, Patience = 2 });
        (state, _) = state.Observe(0, 1.0, tieBreakLoss: 0.28);
        (state, _) = state.Observe(1, 1.0, tieBreakLoss: 0.30);
        Assert.Equal(0, state.BestRound);
        Assert.Equal(1, state.RoundsWithoutImprovement);
        (state, var decision) = state.Observe(2, 1.0, tieBreakLoss: 0.05);
        Assert.Equal(2, state.BestRound);
        Assert.Equal(0.05, state.BestTieBreak);
        Assert.Equal(StopDecision.Continue, decision);
        // A higher accuracy wins whatever its loss; a lower one never does.
        (state, _) = state.Observe(3, 0.995, tieBreakLoss: 0.01);
        Assert.Equal(2, state.BestRound);
    }

    [Fact]
    public void A_report_breaks_accuracy_ties_with_its_own_loss_but_loss_itself_has_no_tie_break()
    {
        var first = TestSupport.ReportWithF1([0.9, 0.9], loss: 0.40, accuracy: 0.9);
        var second = TestSupport.ReportWithF1([0.9, 0.9], loss: 0.35, accuracy: 0.9);
        var (byAccuracy, _) = EarlyStopping.Start().Observe(0, first);
        Assert.Equal(1, byAccuracy.Observe(1, second).State.BestRound);
        var (byLoss, _) = EarlyStopping.Start(new() { Metric = StoppingMetric.ValidationLoss }).Observe(0, second);
        Assert.Equal(0, byLoss.Observe(1, second).State.BestRound);
    }

    [Fact]
    public void Stops_at_max_rounds()
    {
        var (_, decisions) = Feed(new EarlyStoppingOptions { Metric = StoppingMetric.ValidationLoss, MaxRounds = 2, Patience = 5 }, 0.9, 0.8, 0.7);
        Assert.Equal([StopDecision.Continue, StopDecision.Continue, StopDecision.StopMaxRounds], decisions);
    }

    [Fact]
    public void Budget_wins_over_everything_else()
    {
        var (state, decision) = EarlyStopping.Start().Observe(0, 0.5, budgetExhausted: true);
        Assert.Equal(StopDecision.StopBudget, decision);
        Assert.Equal(0, state.BestRound);
    }

    [Fact]
    public void NaN_is_never_an_improvement()
    {
        var (state, decisions) = Feed(new EarlyStoppingOptions { Metric = StoppingMetric.ValidationLoss, Patience = 1 }, double.NaN, 0.5, double.NaN);
        Assert.Equal(1, state.BestRound);
        Assert.Equal(StopDecision.StopPatienceExhausted, decisions[0]);
        Assert.Equal(StopDecision.StopPatienceExhausted, decisions[2]);
    }

    [Fact]
    public void Observe_reads_the_configured_metric_from_a_report()
    {
        var report = TestSupport.ReportWithF1([0.5, 0.7], loss: 0.33, accuracy: 0.61);
        Assert.Equal(0.61, EarlyStopping.Start().Observe(0, report).State.BestValue);
        Assert.Equal(0.33, EarlyStopping.Start(new() { Metric = StoppingMetric.ValidationLoss }).Observe(0, report).State.BestValue);
        Assert.Equal(0.6, EarlyStopping.Start(new() { Metric = StoppingMetric.MacroF1 }).Observe(0, report).State.BestValue, 1e-12);
        Assert.Equal(0.6, new EarlyStoppingOptions { Metric = StoppingMetric.WeightedF1 }.ValueOf(report), 1e-12);
    }

    [Fact]
    public void Rounds_must_move_forward_and_state_is_immutable()
    {
        var start = EarlyStopping.Start();
        var (after, _) = start.Observe(0, 0.5);
        Assert.False(start.HasBest);
        Assert.True(after.HasBest);
        Assert.Throws<ArgumentException>(() => after.Observe(0, 0.4));
        Assert.Throws<ArgumentOutOfRangeException>(() => start.Observe(-1, 0.4));
    }
}
