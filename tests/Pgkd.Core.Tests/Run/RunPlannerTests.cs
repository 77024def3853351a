using Pgkd.Core.Run;

namespace Pgkd.Core.Tests.Run;

public class RunPlannerTests
{
    // Stopping on loss: the outcomes below vary only their loss.
    private static readonly RunConfiguration Config = RunConfiguration.Default with
    {
        SamplesPerRound = 20, FloorPerClass = 2, Patience = 2, MaxRounds = 4, StoppingMetric = StoppingMetric.ValidationLoss,
    };

    private static RoundOutcome Outcome(int round, double loss, long tokens = 0, decimal cost = 0m, double[]? f1 = null) =>
        new(round, TestSupport.ReportWithF1(f1 ?? [0.9, 0.6, 0.9, 0.9], loss), tokens, cost);

    [Fact]
    public void After_round_zero_it_asks_for_round_one_weighted_to_the_weak_class()
    {
        var (progress, step) = RunPlanner.Next(Config, RunProgress.Start(Config), Outcome(0, 0.5));
        var generate = Assert.IsType<RunStep.GenerateRound>(step);
        Assert.Equal(1, generate.Round);
        // Floor 2 each, 12 left on weights .2, .5, .2, .2: shares 2.18, 5.45, 2.18, 2.18 -> 2, 5, 2, 2 + the 1 left to class 1 (.45 vs .18).
        Assert.Equal([4, 8, 4, 4], generate.Allocation);
        Assert.True(generate.PromptOptions.IncludeHardNegatives);
        Assert.Equal(Config.SeedForRound(1), RunPlanner.MiningFor(Config, 0)!.Seed);
        Assert.Equal(0, progress.Stopping.BestRound);
    }

    [Fact]
    public void Random_augmentation_asks_for_balanced_samples_without_guidance()
    {
        var config = Config with { Strategy = RunStrategy.RandomAugmentation };
        var (_, step) = RunPlanner.Next(config, RunProgress.Start(config), Outcome(0, 0.5));
        var generate = Assert.IsType<RunStep.GenerateRound>(step);
        Assert.Equal([5, 5, 5, 5], generate.Allocation);
        Assert.Null(RunPlanner.MiningFor(config, 0));
        Assert.False(generate.PromptOptions.IncludeValidationReport);
        Assert.False(generate.PromptOptions.IncludeHardNegatives);
    }

    [Fact]
    public void Without_hard_negatives_no_mining_is_asked_for()
    {
        var config = Config with { IncludeHardNegatives = false };
        var (_, step) = RunPlanner.Next(config, RunProgress.Start(config), Outcome(0, 0.5));
        Assert.IsType<RunStep.GenerateRound>(step);
        Assert.Null(RunPlanner.MiningFor(config, 0));
    }

    [Fact]
    public void Finishes_with_the_best_round_when_patience_runs_out()
    {
        var progress = RunProgress.Start(Config);
        RunStep step = null!;
        foreach (var (round, loss) in new[] { (0, 0.50), (1, 0.40), (2, 0.45), (3, 0.41) })
            (progress, step) = RunPlanner.Next(Config, progress, Outcome(round, loss, tokens: round == 0 ? 0 : 100));
        Assert.Equal(new RunStep.Finish(1, 0.40, StopDecision.StopPatienceExhausted), step);
        Assert.Equal(300, progress.TeacherTokensUsed);
        Assert.Equal(3, progress.TeacherRounds);
    }

    [Fact]
    public void Finishes_at_max_rounds()
    {
        var progress = RunProgress.Start(Config);
        RunStep step = null!;
        for (var round = 0; round <= 4; round++)
            (progress, step) = RunPlanner.Next(Config, progress, Outcome(round, 1.0 - round * 0.1));
        Assert.Equal(new RunStep.Finish(4, 0.6, StopDecision.StopMaxRounds), step);
    }

    [Fact]
    public void Finishes_when_the_token_or_cost_budget_is_spent()
    {
        var config = Config with { TeacherTokenBudget = 1000, TeacherCostBudgetUsd = 1m };
        var (p, _) = RunPlanner.Next(config, RunProgress.Start(config), Outcome(0, 0.5));
        var (_, tokens) = RunPlanner.Next(config, p, Outcome(1, 0.4, tokens: 1000));
        Assert.Equal(new RunStep.Finish(1, 0.4, StopDecision.StopBudget), tokens);
        var (_, cost) = RunPlanner.Next(config, p, Outcome(1, 0.4, tokens: 10, cost: 1.2m));
        Assert.Equal(StopDecision.StopBudget, Assert.IsType<RunStep.Finish>(cost).Reason);
    }

    [Fact]
    public void Budget_is_exhausted_once_either_limit_is_reached()
    {
        var config = Config with { TeacherTokenBudget = 1000, TeacherCostBudgetUsd = 2m };
        var fresh = RunProgress.Start(config);
        Assert.False(RunPlanner.BudgetExhausted(config, fresh with { TeacherTokensUsed = 999, TeacherCostUsd = 1.99m }));
        Assert.True(RunPlanner.BudgetExhausted(config, fresh with { TeacherTokensUsed = 1000 }));
        Assert.True(RunPlanner.BudgetExhausted(config, fresh with { TeacherCostUsd = 2m }));
    }

    [Fact]
    public void Stops_before_a_round_the_budget_cannot_pay_for()
    {
        var config = Config with { TeacherTokenBudget = 1000 };
        var (p, _) = RunPlanner.Next(config, RunProgress.Start(config), Outcome(0, 0.5));
        (p, var step) = RunPlanner.Next(config, p, Outcome(1, 0.4, tokens: 400));
        Assert.IsType<RunStep.GenerateRound>(step); // 400 + 400 <= 1000
        (_, step) = RunPlanner.Next(config, p, Outcome(2, 0.3, tokens: 400));
        Assert.Equal(StopDecision.StopBudget, Assert.IsType<RunStep.Finish>(step).Reason); // 800 + 400 > 1000
        Assert.False(RunPlanner.BudgetExhausted(config, RunProgress.Start(config)));
    }

    [Fact]
    public void A_floor_too_big_for_the_classes_is_lowered_not_fatal()
    {
        var config = Config with { SamplesPerRound = 6, FloorPerClass = 5 };
        var (_, step) = RunPlanner.Next(config, RunProgress.Start(config), Outcome(0, 0.5));
        var allocation = Assert.IsType<RunStep.GenerateRound>(step).Allocation;
        Assert.Equal(6, allocation.Sum());
        Assert.All(allocation, c => Assert.True(c >= 1));
    }

    [Fact]
    public void The_round_carries_the_floor_and_cap_it_kept_to()
    {
        // 20 samples over 4 classes: no cap by default; a cap of 6 binds on the weak class.
        var (_, step) = RunPlanner.Next(Config, RunProgress.Start(Config), Outcome(0, 0.5, f1: [1.0, 0.0, 1.0, 1.0]));
        var generate = Assert.IsType<RunStep.GenerateRound>(step);
        Assert.Equal(new Pgkd.Core.Guidance.AllocationBounds(2, null), generate.Bounds);
        Assert.Equal([3, 11, 3, 3], generate.Allocation); // 12 over weights .1, 1.1, .1, .1: the cap does not bind

        var capped = Config with { CapPerClass = 6 };
        (_, step) = RunPlanner.Next(capped, RunProgress.Start(capped), Outcome(0, 0.5, f1: [1.0, 0.0, 1.0, 1.0]));
        generate = Assert.IsType<RunStep.GenerateRound>(step);
        Assert.Equal(new Pgkd.Core.Guidance.AllocationBounds(2, 6), generate.Bounds);
        Assert.Equal([5, 6, 5, 4], generate.Allocation);
        Assert.Contains("CapPerClass (1) is below FloorPerClass (2)", string.Join("; ", (Config with { CapPerClass = 1 }).Validate()));
    }

    [Fact]
    public void Rejects_out_of_order_rounds_bad_spend_and_invalid_configuration()
    {
        var start = RunProgress.Start(Config);
        Assert.Throws<ArgumentException>(() => RunPlanner.Next(Config, start, Outcome(1, 0.5)));
        Assert.Throws<ArgumentException>(() => RunPlanner.Next(Config, start, Outcome(0, 0.5, tokens: -1)));
        Assert.Throws<ArgumentException>(() => RunPlanner.Next(Config with { MaxRounds = 0 }, start, Outcome(0, 0.5)));
    }

    [Fact]
    public void Replaying_the_same_outcomes_gives_the_same_steps()
    {
        static List<RunStep> Replay()
        {
            var progress = RunProgress.Start(Config);
            var steps = new List<RunStep>();
            foreach (var (round, loss) in new[] { (0, 0.5), (1, 0.45), (2, 0.44) })
            {
                (progress, var step) = RunPlanner.Next(Config, progress, Outcome(round, loss, f1: [0.7, 0.8, 0.9, 0.95]));
                steps.Add(step);
            }
            return steps;
        }
        var a = Replay();
        var b = Replay();
        Assert.Equal(a.Count, b.Count);
        for (var i = 0; i < a.Count; i++)
        {
            var x = Assert.IsType<RunStep.GenerateRound>(a[i]);
            var y = Assert.IsType<RunStep.GenerateRound>(b[i]);
            Assert.Equal(x.Round, y.Round);
            Assert.Equal(x.Allocation, y.Allocation);
            Assert.Equal(x.PromptOptions, y.PromptOptions);
        }
    }
}
