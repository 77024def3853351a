using CsCheck;
using Pgkd.Core.Data;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>One round's prompt becomes a validated dataset shard; the budget stops a round cleanly.</summary>
public sealed class RoundShardGeneratorTests
{
    [Fact]
    public async Task OneRound_BecomesAValidatedShard()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var generator = new RoundShardGenerator(TestTeacher.Client(server, TeacherKind.AzureOpenAI), new RoundShardOptions { SamplesPerRequest = 16 });
        var context = TestTeacher.ReplyContext();
        int[] allocation = [10, 6, 8, 12];

        var shard = await generator.GenerateAsync(
            new RoundShardRequest("run-shard", 1, TestTeacher.RoundInput(allocation), context), new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.Equal(ShardStop.Completed, shard.Stop);
        Assert.Equal(allocation, shard.Requested);
        Assert.Equal(allocation, shard.AcceptedByLabel);
        Assert.Equal(36, shard.Examples.Count);
        Assert.Equal(3, shard.Calls.Count); // 36 samples in batches of about 16: 12 + 12 + 12
        Assert.Equal(0, shard.UnusableReplies);
        Assert.True(shard.PromptTokens > 0 && shard.CompletionTokens > 0);
        var hashes = shard.Examples.Examples.Select(e => TextHash.Of(e.Text)).ToList();
        Assert.Equal(hashes.Count, hashes.Distinct().Count());
        Assert.DoesNotContain(hashes, context.HeldOutHashes.Contains);
        Assert.DoesNotContain(hashes, context.TrainingHashes.Contains);

        // The shard as stored: JSONL that reads back as the same dataset version.
        using var stream = new MemoryStream();
        shard.WriteJsonl(stream);
        stream.Position = 0;
        var back = DatasetReader.ReadJsonl(stream, "shard.jsonl", new DatasetReadOptions { Labels = TestTeacher.Labels });
        Assert.Equal(shard.Examples.ContentHash, back.ContentHash);
    }

    [Fact]
    public async Task TwoRunsWithTheSameInputs_StoreByteIdenticalShards()
    {
        // Issue 19.3: with the emulator teacher the shard depends on the data, configuration and seed, not on the run id.
        // One request in flight at a time, as a round's parallel requests may reach the emulator in either order.
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:LabelNoiseRate", "0.1"));
        var generator = new RoundShardGenerator(TestTeacher.Client(server), new RoundShardOptions { SamplesPerRequest = 8, MaxParallelRequests = 1 });
        async Task<byte[]> ShardOf(string runId)
        {
            using var stream = new MemoryStream();
            for (var round = 1; round <= 2; round++)
            {
                var shard = await generator.GenerateAsync(new RoundShardRequest(runId, round, TestTeacher.RoundInput([6, 4, 5, 5], round),
                    TestTeacher.ReplyContext()), new TeacherUsageLedger(TeacherBudget.Unlimited));
                Assert.Equal(ShardStop.Completed, shard.Stop);
                shard.WriteJsonl(stream);
            }
            return stream.ToArray();
        }
        var first = await ShardOf(Guid.NewGuid().ToString());
        Assert.True(first.Length > 1000);
        Assert.Equal(first, await ShardOf(Guid.NewGuid().ToString()));
    }

    [Fact]
    public async Task AFlakyTeacher_StillYieldsAValidatedShard()
    {
        // 429s, 500s and malformed replies from a fixed seed; the client retries and repairs.
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:TooManyRequestsRate", "0.2"), ("Emulator:Faults:RetryAfterMs", "10"),
            ("Emulator:Faults:ServerErrorRate", "0.2"), ("Emulator:Faults:MalformedReplyRate", "0.3"));
        var generator = new RoundShardGenerator(TestTeacher.Client(server, TeacherKind.OpenAI, TestTeacher.FastOptions(o => o.MaxRetries = 8)),
            new RoundShardOptions { SamplesPerRequest = 8, MaxParallelRequests = 1 });

        var shard = await generator.GenerateAsync(
            new RoundShardRequest("run-flaky", 2, TestTeacher.RoundInput([8, 8, 8, 8], round: 2), TestTeacher.ReplyContext()),
            new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.True(server.Stats.TooManyRequests + server.Stats.ServerErrors > 0, "no transient fault was injected");
        Assert.True(server.Stats.Malformed > 0, "no malformed reply was injected");
        Assert.Contains(shard.Calls, c => c.Purpose == TeacherCallPurpose.Repair);
        Assert.Contains(shard.Calls, c => c.Retries.Count > 0);
        Assert.Equal(32 - shard.UnusableReplies * 8, shard.Examples.Count);
        Assert.Equal(shard.Examples.Count, shard.Examples.Deduplicate().Count);
    }

    [Fact]
    public async Task HeldOutTextsFromALeakyTeacher_AreRejected()
    {
        var dir = Directory.CreateTempSubdirectory("pgkd-generator-");
        try
        {
            // A teacher whose pool holds the validation texts and was given no exclude file for them.
            var pool = Path.Combine(dir.FullName, "pool.jsonl");
            File.WriteAllLines(pool, File.ReadAllLines(TestTeacher.DemoFile("seed_val.jsonl")));
            await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:PoolPath", pool));
            var generator = new RoundShardGenerator(TestTeacher.Client(server));
            var input = TestTeacher.RoundInput([2, 2, 2, 2]) with { Selection = null };

            var shard = await generator.GenerateAsync(new RoundShardRequest("run-leak", 1, input, TestTeacher.ReplyContext()), new TeacherUsageLedger(TeacherBudget.Unlimited));

            // Every sample the teacher sent was a validation text and was rejected for it. (The emulator's policy sends
            // only texts whose pool neighbourhood agrees with their label, so fewer than the 8 asked for can come back.)
            Assert.Empty(shard.Examples.Examples);
            Assert.InRange(shard.Rejected[RejectReason.HeldOutLeakage], 1, 8);
            Assert.Equal(shard.Rejected[RejectReason.HeldOutLeakage], shard.Rejected.Values.Sum());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TheTokenBudget_StopsTheRoundCleanly_KeepingWhatWasAccepted()
    {
        // Measure one batch's tokens on a twin emulator (same seed, same calls, same replies) ...
        int firstCallTokens;
        await using (var twin = await TestTeacher.StartEmulatorAsync())
        {
            var probe = await new RoundShardGenerator(TestTeacher.Client(twin), new RoundShardOptions { SamplesPerRequest = 8, MaxParallelRequests = 1 })
                .GenerateAsync(new RoundShardRequest("run-budget", 1, TestTeacher.RoundInput([2, 2, 2, 2]), TestTeacher.ReplyContext()),
                    new TeacherUsageLedger(TeacherBudget.Unlimited));
            firstCallTokens = probe.Calls[0].TotalTokens;
        }

        // ... then allow about one and a half batches: the second request's prompt no longer fits.
        await using var server = await TestTeacher.StartEmulatorAsync();
        var generator = new RoundShardGenerator(TestTeacher.Client(server), new RoundShardOptions { SamplesPerRequest = 8, MaxParallelRequests = 1 });
        var ledger = new TeacherUsageLedger(new TeacherBudget(MaxTotalTokens: firstCallTokens + firstCallTokens / 2));

        var shard = await generator.GenerateAsync(
            new RoundShardRequest("run-budget", 1, TestTeacher.RoundInput([10, 10, 10, 10]), TestTeacher.ReplyContext()), ledger);

        Assert.Equal(ShardStop.BudgetReached, shard.Stop);
        Assert.Contains("Teacher:Budget:MaxTotalTokens", shard.StopReason);
        Assert.Single(shard.Calls);
        Assert.Equal(8, shard.Examples.Count); // the first batch's samples are kept
        Assert.Equal(1, server.Stats.Requests);
        Assert.Equal(firstCallTokens, ledger.Totals.TotalTokens);
    }

    [Fact]
    public void SplitAllocation_KeepsEveryCount_InEvenBatches()
    {
        Gen.Select(Gen.Int[0, 40].Array[1, 6], Gen.Int[1, 20]).Sample((allocation, size) =>
        {
            var batches = RoundShardGenerator.SplitAllocation(allocation, size);
            var total = allocation.Sum();
            Assert.Equal((total + size - 1) / size, batches.Count);
            for (var c = 0; c < allocation.Length; c++) Assert.Equal(allocation[c], batches.Sum(b => b[c]));
            if (batches.Count > 0)
            {
                var sizes = batches.Select(b => b.Sum()).ToArray();
                Assert.True(sizes.Max() <= size && sizes.Max() - sizes.Min() <= 1);
            }
        });
    }
}
