using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>Issue 22 point 4: rounds through the Batch API of a real emulator (Files and Batches endpoints), on both routes.</summary>
public sealed class BatchApiTests
{
    private static RoundShardRequest Request(string runId, int round, int[] allocation) =>
        new(runId, round, TestTeacher.RoundInput(allocation, round), TestTeacher.ReplyContext(), BatchApi: true);

    private static TeacherClientOptions Options(Action<TeacherClientOptions>? change = null) => TestTeacher.FastOptions(o =>
    {
        o.Prices["gpt-4o-mini"] = new TokenPrice(0.15m, 0.60m) { CachedInputPerMillion = 0.075m };
        o.Batch.PollInterval = TimeSpan.FromMilliseconds(20);
        change?.Invoke(o);
    });

    private sealed class MemoryJournal : ITeacherBatchJournal
    {
        public string? State;
        public int Writes;

        public Task<string?> ReadAsync(CancellationToken cancellationToken) => Task.FromResult(State);

        public Task WriteAsync(string state, CancellationToken cancellationToken)
        {
            State = state;
            Writes++;
            return Task.CompletedTask;
        }
    }

    [Theory]
    [InlineData(TeacherKind.AzureOpenAI)]
    [InlineData(TeacherKind.OpenAI)]
    public async Task ARound_ThroughTheBatchApi_IsValidatedAndAccountedLikeDirectCalls_AtTheBatchPrice(TeacherKind kind)
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, kind, Options());
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4 });
        var journal = new MemoryJournal();

        var shard = await generator.GenerateAsync(Request("run-batch-" + kind, 1, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited), default, journal);

        Assert.Equal("batch", shard.Api);
        Assert.Equal(16, shard.Examples.Count);
        Assert.Equal("json_schema", shard.ResponseMode);
        Assert.Equal(4, shard.Calls.Count);
        Assert.All(shard.Calls, c =>
        {
            Assert.True(c.Batch);
            Assert.Equal((c.PromptTokens - c.CachedPromptTokens) * 0.15m * 0.5m / 1_000_000m + c.CachedPromptTokens * 0.075m * 0.5m / 1_000_000m
                         + c.CompletionTokens * 0.60m * 0.5m / 1_000_000m, c.CostUsd);
        });
        Assert.Equal(4, server.Stats.Completed); // each line answered once, over the emulator's own chat completions
        Assert.Equal(1, journal.Writes);
        Assert.Null(shard.StopReason);
    }

    [Fact]
    public async Task ARedeliveredStep_ResumesItsBatch_InsteadOfPayingForAnother()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, TeacherKind.AzureOpenAI, Options());
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 8 });
        var journal = new MemoryJournal();

        var first = await generator.GenerateAsync(Request("run-batch-resume", 1, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited), default, journal);
        var again = await generator.GenerateAsync(Request("run-batch-resume", 1, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited), default, journal);

        Assert.Equal(1, journal.Writes);
        Assert.Equal(2, server.Stats.Completed); // the second step asked nothing new: it read the same batch's output
        Assert.Equal(first.Examples.Examples, again.Examples.Examples);
    }

    [Fact]
    public async Task ABatchNotDoneWithinMaxWait_IsCancelled_AndTheRoundFailsNamingTheSetting()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Batch:StartDelayMs", "60000"));
        var client = TestTeacher.Client(server, TeacherKind.OpenAI, Options(o => o.Batch.MaxWait = TimeSpan.FromMilliseconds(200)));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 8 });

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() =>
            generator.GenerateAsync(Request("run-batch-slow", 2, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited)));

        Assert.Contains("Teacher:Batch:MaxWait", e.Message);
        Assert.Contains("it was cancelled", e.Message);
        Assert.Contains("answered none of round 2's 2 requests", e.Message);
        Assert.Equal(0, server.Stats.Requests);
    }

    [Fact]
    public async Task FailedLines_AreAskedAgainDirectly_AndCountedAsRetries()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:ServerErrorRate", "0.4"), ("Emulator:Faults:MaxInjected", "3"));
        var client = TestTeacher.Client(server, TeacherKind.OpenAI, Options());
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 2 });
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);

        var shard = await generator.GenerateAsync(Request("run-batch-errors", 1, [4, 4, 4, 4]), ledger);

        Assert.Equal(16, shard.Examples.Count);
        Assert.InRange(server.Stats.ServerErrors, 1, 3);
        // Every 500, in the batch or in a direct retry, is a failed attempt in the ledger and a 5xx retry in the shard.
        Assert.Equal(server.Stats.ServerErrors, ledger.FailedAttempts.Count);
        Assert.All(ledger.FailedAttempts, f => Assert.Equal(TeacherRetryCause.ServerError, f.Cause));
        var direct = shard.Calls.Count(c => !c.Batch); // the failed lines, asked directly at the full price
        Assert.InRange(direct, 1, 3);
        Assert.Equal(8, shard.Calls.Count(c => c.Batch) + direct);
    }

    [Fact]
    public async Task ContentFilteredLines_AreCountedLikeDirectOnes()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:PromptFilterRate", "0.3"), ("Emulator:Faults:ContentFilterRate", "0.3"));
        var client = TestTeacher.Client(server, TeacherKind.AzureOpenAI, Options());
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 2 });

        var shard = await generator.GenerateAsync(Request("run-batch-filter", 1, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.Equal(server.Stats.PromptsFiltered, shard.PromptsFiltered);
        Assert.Equal(server.Stats.RepliesFiltered, shard.RepliesFiltered);
        Assert.True(shard.PromptsFiltered + shard.RepliesFiltered > 0);
        Assert.Equal(16 - 2 * (shard.PromptsFiltered + shard.RepliesFiltered), shard.Examples.Count);
    }
}
