using Pgkd.Contracts;
using Pgkd.Storage;

namespace Pgkd.Orchestrator.Tests;

/// <summary>
/// The run state machine (DESIGN.md §1) on MassTransit's in-memory harness and a real Azurite: every transition,
/// duplicated and late events, cancellation and faults at each step, and a crash between "manifest updated" and
/// "command published".
/// </summary>
public sealed class RunOrchestratorTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task A_run_goes_through_every_transition_to_completion()
    {
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs);
        var runId = await h.CreateRunAsync(maxRounds: 2, withTest: true, mode: "full");
        await h.StartRunAsync(runId);
        var manifest = await h.WaitForEndAsync(runId);

        Assert.Equal(RunStatus.Completed, manifest.Status);
        var steps = h.Commands(runId).Select(c => c switch
        {
            TrainRound t => $"train {t.Round}",
            EvaluateRound e => $"evaluate {e.Round} {e.Split}",
            GenerateRound g => $"generate {g.Round}",
            RunCompleted done => $"completed {done.BestRound}",
            var other => other.GetType().Name,
        }).ToList();
        Assert.Equal([
            "train 0", "evaluate 0 Validation",
            "generate 1", "train 1", "evaluate 1 Validation",
            "generate 2", "train 2", "evaluate 2 Validation",
            "evaluate 2 Test", "completed 2",
        ], steps);

        // What each transition carries: training data grows by a shard a round, full mode continues from the last checkpoint.
        var trains = h.Commands(runId).OfType<TrainRound>().ToList();
        Assert.Equal([1, 2, 3], trains.Select(t => t.TrainingDataUris.Count));
        Assert.Null(trains[0].StartFromCheckpointUri);
        Assert.EndsWith("checkpoints/round-1/", trains[2].StartFromCheckpointUri!.AbsolutePath);
        Assert.All(h.Commands(runId).OfType<GenerateRound>(), g => Assert.True(h.Store.ExistsAsync(h.Store.BlobNameOf(g.GuidanceUri)).Result));

        // Mining is the planner's decision, carried in the command: for the next round's prompt on validation, none on test.
        var config = (await h.ManifestAsync(runId)).Configuration;
        var evaluations = h.Commands(runId).OfType<EvaluateRound>().ToList();
        Assert.All(evaluations.Where(e => e.Split == EvaluationSplit.Validation), e =>
        {
            Assert.NotNull(e.Mining);
            Assert.Equal(Pgkd.Core.Run.RunPlanner.MiningFor(config, e.Round), e.Mining);
            Assert.Equal(config.SeedForRound(e.Round + 1), e.Mining!.Seed);
        });
        Assert.Null(Assert.Single(evaluations, e => e.Split == EvaluationSplit.Test).Mining);

        // The manifest records every round's figures, the stop, the test score and the report.
        Assert.Equal([0, 1, 2], manifest.Rounds.Select(r => r.Round));
        Assert.All(manifest.Rounds, r => Assert.NotNull(r.CheckpointFolder));
        Assert.Equal([0.5, 0.6, 0.7], manifest.Rounds.Select(r => r.Accuracy!.Value));
        Assert.Equal([0, 10, 10], manifest.Rounds.Select(r => r.Accepted));
        Assert.Equal(2, manifest.BestRound);
        Assert.Contains("round 2", manifest.StopReason);
        Assert.NotNull(manifest.TestReport);
        Assert.True(await h.Store.ExistsAsync(RunBlobLayout.Report(runId)));
    }

    [Fact]
    public async Task A_run_without_a_test_set_completes_after_its_last_validation()
    {
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs);
        var runId = await h.CreateRunAsync(maxRounds: 1, withTest: false);
        await h.StartRunAsync(runId);
        var manifest = await h.WaitForEndAsync(runId);

        Assert.Equal(RunStatus.Completed, manifest.Status);
        Assert.DoesNotContain(h.Commands(runId).OfType<EvaluateRound>(), e => e.Split == EvaluationSplit.Test);
        Assert.Single(h.Commands(runId).OfType<RunCompleted>());
        Assert.Null(manifest.TestReport);
    }

    [Fact]
    public async Task A_random_augmentation_run_asks_for_no_mining()
    {
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs);
        var runId = await h.CreateRunAsync(maxRounds: 1, withTest: false, strategy: Pgkd.Core.Run.RunStrategy.RandomAugmentation);
        await h.StartRunAsync(runId);
        Assert.Equal(RunStatus.Completed, (await h.WaitForEndAsync(runId)).Status);
        var evaluations = h.Commands(runId).OfType<EvaluateRound>().ToList();
        Assert.Equal(2, evaluations.Count);
        Assert.All(evaluations, e => Assert.Null(e.Mining));
    }

    [Fact]
    public async Task Every_event_delivered_twice_gives_the_same_manifest_and_the_same_commands()
    {
        await using var once = await OrchestratorHarness.StartAsync(azurite.Blobs);
        var first = await once.CreateRunAsync();
        await once.StartRunAsync(first);
        var expected = await once.WaitForEndAsync(first);

        await using var twice = await OrchestratorHarness.StartAsync(azurite.Blobs, new Script { AnswerTwice = true });
        var second = await twice.CreateRunAsync();
        await twice.StartRunAsync(second);
        await twice.StartRunAsync(second); // the gateway's command twice, too
        var actual = await twice.WaitForEndAsync(second);
        await twice.SettleAsync();

        Assert.Equal(Comparable(expected), Comparable(actual));
        // The same commands, in the same order of first appearance: a duplicate that comes while its answer is still
        // outstanding re-sends the same command (same key, same content; the step finds its output stored and only
        // re-announces it), never a different one. Late duplicates send nothing (the next test).
        var expectedCommands = once.Commands(first).Select(c => OrchestratorHarness.Describe(c, first)).ToList();
        var actualCommands = twice.Commands(second).Select(c => OrchestratorHarness.Describe(c, second)).ToList();
        Assert.Equal(expectedCommands, actualCommands.Distinct().ToList());
    }

    [Fact]
    public async Task Events_that_arrive_after_the_run_moved_on_change_nothing_and_send_nothing()
    {
        var script = new Script();
        var held = script.Hold("train", 2); // the run waits in round 2's training
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs, script);
        var runId = await h.CreateRunAsync();
        await h.StartRunAsync(runId);
        await WaitUntilAsync(() => Task.FromResult(h.Commands(runId).Any(c => c is TrainRound { Round: 2 })));
        var before = await h.ManifestAsync(runId);
        var commandsBefore = h.Commands(runId).Count;
        var consumedBefore = h.EventsConsumed;

        // Every earlier event whose answer is recorded again, in a shuffled order: late, and out of order. (Round 2's
        // RoundGenerated is left out: its answer is still outstanding, so a duplicate of it rightly re-sends TrainRound.)
        var late = script.Handled.Where(e => e is not RoundGenerated { Round: 2 }).OrderBy(_ => Random.Shared.Next()).ToList();
        Assert.Equal(5, late.Count); // trained 0, evaluated 0, generated 1, trained 1, evaluated 1
        foreach (var message in late) await h.Harness.Bus.Publish(message, message.GetType());
        await h.StartRunAsync(runId);
        await WaitUntilAsync(() => Task.FromResult(h.EventsConsumed >= consumedBefore + late.Count + 1));

        Assert.Equal(commandsBefore, h.Commands(runId).Count);
        Assert.Equal(Comparable(before), Comparable(await h.ManifestAsync(runId)));

        held.SetResult();
        Assert.Equal(RunStatus.Completed, (await h.WaitForEndAsync(runId)).Status);
    }

    [Theory]
    [InlineData("generate", 1)]
    [InlineData("train", 0)]
    [InlineData("train", 1)]
    [InlineData("evaluate", 1)]
    public async Task A_cancel_while_a_step_runs_lets_the_step_finish_and_starts_nothing_after_it(string step, int round)
    {
        var script = new Script();
        var held = script.Hold(step, round);
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs, script);
        var runId = await h.CreateRunAsync();
        await h.StartRunAsync(runId);
        await WaitUntilAsync(() => Task.FromResult(h.Commands(runId).Any(c => Is(c, step, round))));
        await h.CancelAsync(runId);
        await WaitUntilAsync(async () => (await h.ManifestAsync(runId)).CancelRequested);
        held.SetResult();

        var manifest = await h.WaitForEndAsync(runId);
        Assert.Equal(RunStatus.Cancelled, manifest.Status);
        Assert.Equal("cancelled by the test", manifest.StopReason);
        Assert.True(Is(h.Commands(runId)[^1], step, round), "nothing was sent after the step in flight");
    }

    [Theory]
    [InlineData("generate", 1, "generating round 1 failed")]
    [InlineData("train", 0, "training round 0 failed")]
    [InlineData("train", 2, "training round 2 failed")]
    [InlineData("evaluate", 1, "evaluating round 1 failed")]
    public async Task A_step_that_keeps_failing_fails_the_run_naming_step_and_round(string step, int round, string reason)
    {
        var script = new Script();
        script.Failures[(step, round)] = "the disk is full";
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs, script);
        var runId = await h.CreateRunAsync();
        await h.StartRunAsync(runId);

        var manifest = await h.WaitForEndAsync(runId);
        Assert.Equal(RunStatus.Failed, manifest.Status);
        Assert.Equal($"{reason}: the disk is full", manifest.FailureReason);
        Assert.True(Is(h.Commands(runId)[^1], step, round), "nothing was sent after the failed step");
    }

    [Theory]
    [InlineData(typeof(TrainRound))]
    [InlineData(typeof(EvaluateRound))]
    [InlineData(typeof(GenerateRound))]
    [InlineData(typeof(RunCompleted))]
    public async Task A_crash_between_updating_the_manifest_and_publishing_is_redelivered_and_the_run_goes_on(Type command)
    {
        var script = new Script();
        script.CrashOnceBeforePublishing.Add(command);
        await using var h = await OrchestratorHarness.StartAsync(azurite.Blobs, script);
        var runId = await h.CreateRunAsync();
        await h.StartRunAsync(runId);

        var manifest = await h.WaitForEndAsync(runId);
        await h.SettleAsync();
        Assert.Equal(RunStatus.Completed, manifest.Status);
        Assert.Equal(2, manifest.BestRound);
        Assert.Contains(h.Commands(runId), c => c.GetType() == command);
        Assert.Single(h.Commands(runId).OfType<RunCompleted>());
    }

    private static bool Is(object command, string step, int round) => (step, command) switch
    {
        ("generate", GenerateRound g) => g.Round == round,
        ("train", TrainRound t) => t.Round == round,
        ("evaluate", EvaluateRound e) => e.Round == round && e.Split == EvaluationSplit.Validation,
        _ => false,
    };

    /// <summary>The manifest as JSON without what differs between two runs of the same inputs (id, timestamps).</summary>
    private static string Comparable(RunManifest manifest) =>
        BinaryData.FromObjectAsJson(manifest with { UpdatedAt = default }, RunStore.Json).ToString()
            .Replace(manifest.RunId.ToString("D"), "RUN").Replace(manifest.RunId.ToString("N"), "RUN");

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        // Generous: only a machine that stops for minutes fails this, and then the message says what never happened.
        for (var i = 0; i < 1200; i++)
        {
            if (await condition()) return;
            await Task.Delay(100);
        }
        Assert.Fail("the run never reached the expected state");
    }
}
