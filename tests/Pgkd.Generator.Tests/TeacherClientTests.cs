using Pgkd.Core.Teacher;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>The teacher client against a real emulator: both protocols, tokens, cost, retries, repair.</summary>
public sealed class TeacherClientTests
{
    private static readonly TeacherCallContext Call = new("run-client", 1);

    [Theory]
    [InlineData(TeacherKind.AzureOpenAI)]
    [InlineData(TeacherKind.OpenAI)]
    public async Task GeneratesAndParses_RecordingTokensLatencyAndCost(TeacherKind kind)
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var options = TestTeacher.FastOptions(o => o.Prices["gpt-4o-mini"] = new TokenPrice(0.15m, 0.60m));
        var client = TestTeacher.Client(server, kind, options);
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);
        var prompt = TestTeacher.Prompt([3, 3, 3, 3]);

        var result = await client.GenerateAsync(prompt, TestTeacher.ReplyContext(), Call, ledger);

        Assert.True(result.Reply.IsValidReply, result.Reply.ReplyError);
        Assert.Equal(12, result.Reply.Accepted.Count);
        Assert.False(result.Repaired);
        var call = Assert.Single(result.Calls);
        Assert.Equal(TeacherCallPurpose.Generate, call.Purpose);
        Assert.Equal(1, call.Attempts);
        // The emulator counts as OpenAI does, with the deployment's tokenizer: the client's own count of the prompt is exact.
        Assert.Equal(ChatTokens.Prompt(client.Tokenizer.Counter, prompt.System, prompt.User), call.PromptTokens);
        Assert.True(call.CompletionTokens > 0);
        Assert.True(call.Latency > TimeSpan.Zero && call.Elapsed >= call.Latency);
        Assert.Equal((call.PromptTokens * 0.15m + call.CompletionTokens * 0.60m) / 1_000_000m, call.CostUsd);
        Assert.Equal(new TeacherUsageTotals(1, call.PromptTokens, call.CompletionTokens, call.CostUsd), ledger.Totals);
        Assert.Equal(12, server.Engine.UsedCount(Call.RunId)); // the run id reached the emulator as the "user" field
    }

    [Theory]
    [InlineData(TeacherKind.AzureOpenAI)]
    [InlineData(TeacherKind.OpenAI)]
    public async Task TooManyRequests_AreRetried_HonouringRetryAfter(TeacherKind kind)
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:TooManyRequestsRate", "1"), ("Emulator:Faults:MaxInjected", "2"), ("Emulator:Faults:RetryAfterMs", "120"));
        var client = TestTeacher.Client(server, kind);

        var result = await client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.True(result.Reply.IsValidReply);
        var call = Assert.Single(result.Calls);
        Assert.Equal(3, call.Attempts);
        Assert.All(call.Retries, r =>
        {
            Assert.Equal(429, r.Status);
            Assert.True(r.FromRetryAfter);
            Assert.Equal(TimeSpan.FromMilliseconds(120), r.Delay); // retry-after-ms, not the 5 ms backoff
        });
        Assert.True(call.Elapsed >= TimeSpan.FromMilliseconds(240));
        Assert.Equal(2, server.Stats.TooManyRequests);
    }

    [Fact]
    public async Task ARetryAfterLongerThanMaxRetryAfter_IsCappedAtIt()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:TooManyRequestsRate", "1"), ("Emulator:Faults:MaxInjected", "1"), ("Emulator:Faults:RetryAfterMs", "60000"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.MaxRetryAfter = TimeSpan.FromMilliseconds(150)));

        var result = await client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, new TeacherUsageLedger(TeacherBudget.Unlimited));

        var retry = Assert.Single(Assert.Single(result.Calls).Retries);
        Assert.Equal(TeacherRetryCause.RateLimited, retry.Cause);
        Assert.True(retry.FromRetryAfter);
        Assert.Equal(TimeSpan.FromMilliseconds(150), retry.Delay); // not the 60 s asked, nor the 50 ms MaxDelay of the backoff
    }

    [Fact]
    public async Task ServerErrors_AreRetried_WithExponentialBackoffAndJitter()
    {
        // Polly's exponential backoff with jitter: waits drawn around 20, 40, 80 ms, each capped at MaxDelay 60 ms.
        async Task<IReadOnlyList<TeacherRetry>> RetriesWithSeed(int seed)
        {
            await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:ServerErrorRate", "1"), ("Emulator:Faults:MaxInjected", "3"));
            var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o =>
            {
                o.BaseDelay = TimeSpan.FromMilliseconds(20);
                o.MaxDelay = TimeSpan.FromMilliseconds(60);
                o.JitterSeed = seed;
            }));
            var result = await client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, new TeacherUsageLedger(TeacherBudget.Unlimited));
            var call = Assert.Single(result.Calls);
            Assert.Equal(4, call.Attempts);
            return call.Retries;
        }

        var retries = await RetriesWithSeed(1);

        Assert.Equal([1, 2, 3], retries.Select(r => r.Attempt));
        Assert.Equal([500, 500, 500], retries.Select(r => r.Status ?? 0));
        Assert.All(retries, r =>
        {
            Assert.Equal(TeacherRetryCause.ServerError, r.Cause);
            Assert.False(r.FromRetryAfter);
            Assert.InRange(r.Delay, TimeSpan.Zero, TimeSpan.FromMilliseconds(60));
        });
        // JitterSeed fixes the draws (tests stay reproducible), and they are draws: another seed waits differently.
        Assert.Equal(retries.Select(r => r.Delay), (await RetriesWithSeed(1)).Select(r => r.Delay));
        Assert.NotEqual(retries.Select(r => r.Delay), (await RetriesWithSeed(2)).Select(r => r.Delay));
    }

    [Fact]
    public async Task Timeouts_AreRetried()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:HangRate", "1"), ("Emulator:Faults:MaxInjected", "1"), ("Emulator:Faults:HangMs", "10000"));
        // Retries to spare: on a loaded machine an attempt can time out before the emulator drew its fault, or after it.
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => { o.RequestTimeout = TimeSpan.FromMilliseconds(400); o.MaxRetries = 20; }));
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);

        var result = await client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, ledger);

        var call = Assert.Single(result.Calls);
        Assert.True(call.Attempts >= 2); // 2 unless a loaded machine also makes the retry slower than 400 ms
        Assert.Equal(TeacherRetryCause.Timeout, call.Retries[0].Cause);
        Assert.Equal("timeout after 0.4 s (Teacher:RequestTimeout)", call.Retries[0].Reason);
        Assert.Equal(call.Retries.Select(r => (r.Cause, r.Reason)), ledger.FailedAttempts.Select(f => (f.Cause, f.Reason)));
        Assert.Equal(1, server.Stats.Hangs);
        Assert.True(result.Reply.IsValidReply);
    }

    [Fact]
    public async Task TheCallersCancellation_DuringAnAttempt_IsNotRetriedNorCountedAsATimeout()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:HangRate", "1"), ("Emulator:Faults:HangMs", "600000"));
        // RequestTimeout far above any wait here: only the caller can end the attempt.
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.RequestTimeout = TimeSpan.FromMinutes(5)));
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);
        using var caller = new CancellationTokenSource();

        var generating = client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, ledger, caller.Token);
        await TestTeacher.WaitUntilAsync(() => server.Stats.Hangs == 1);
        await caller.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generating);
        Assert.Empty(ledger.FailedAttempts);
        Assert.Equal(1, server.Stats.Requests);
    }

    [Fact]
    public async Task TheCallersCancellation_DuringABackoff_EndsTheWait()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:ServerErrorRate", "1"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => { o.BaseDelay = TimeSpan.FromSeconds(30); o.MaxDelay = TimeSpan.FromSeconds(60); }));
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);
        using var caller = new CancellationTokenSource();

        var generating = client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, ledger, caller.Token);
        await TestTeacher.WaitUntilAsync(() => ledger.FailedAttempts.Count == 1);
        await caller.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => generating);
        Assert.Equal(TeacherRetryCause.ServerError, Assert.Single(ledger.FailedAttempts).Cause);
        Assert.Equal(1, server.Stats.Requests);
    }

    [Fact]
    public async Task ABadRequest_IsNotRetried()
    {
        await using var teacher = await FixedAnswerTeacher.StartAsync(400);
        var client = new TeacherClient(TeacherConnection.Parse(teacher.ConnectionString), TestTeacher.FastOptions());
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);

        var e = await Assert.ThrowsAsync<TeacherRequestException>(() =>
            client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, ledger));

        Assert.Equal(400, e.Status);
        Assert.Contains("HTTP 400", e.Message);
        Assert.Equal(1, teacher.Requests);
        Assert.Empty(ledger.FailedAttempts);
    }

    [Fact]
    public async Task AfterMaxRetries_ItGivesUp_WithTheLastReason()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:ServerErrorRate", "1"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.MaxRetries = 2));
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);

        var e = await Assert.ThrowsAsync<TeacherUnavailableException>(() =>
            client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), Call, ledger));

        Assert.Equal(3, e.Attempts);
        Assert.Equal(500, e.LastStatus);
        Assert.Contains("HTTP 500", e.Message);
        Assert.Equal(3, server.Stats.ServerErrors);
        Assert.Equal(0, ledger.Totals.Calls);
        // Every attempt is in the run's failed attempts, the last one (not retried) too.
        Assert.Equal(3, ledger.FailedAttempts.Count);
        Assert.All(ledger.FailedAttempts, f => Assert.Equal((TeacherRetryCause.ServerError, "HTTP 500"), (f.Cause, f.Reason)));
    }

    [Fact]
    public async Task AMalformedReply_IsRepairedOnce()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:MalformedReplyRate", "1"), ("Emulator:Faults:MaxInjected", "1"));
        var client = TestTeacher.Client(server, TeacherKind.AzureOpenAI);
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);

        var result = await client.GenerateAsync(TestTeacher.Prompt([2, 2, 2, 2]), TestTeacher.ReplyContext(), Call, ledger);

        Assert.True(result.Repaired);
        Assert.True(result.Reply.IsValidReply, result.Reply.ReplyError);
        Assert.Equal(8, result.Reply.Accepted.Count); // the repair turn asked again for the original counts
        Assert.Equal([TeacherCallPurpose.Generate, TeacherCallPurpose.Repair], result.Calls.Select(c => c.Purpose));
        Assert.True(result.Calls[1].PromptTokens > result.Calls[0].PromptTokens); // the repair carries the bad reply and the complaint
        Assert.Equal(2, ledger.Totals.Calls);
    }

    [Fact]
    public async Task AReplyThatStaysMalformed_IsRepairedOnlyOnce_AndReportedUnusable()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:MalformedReplyRate", "1"));
        var client = TestTeacher.Client(server);

        var result = await client.GenerateAsync(TestTeacher.Prompt([2, 2, 2, 2]), TestTeacher.ReplyContext(), Call, new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.True(result.Repaired);
        Assert.False(result.Reply.IsValidReply);
        Assert.Equal(2, result.Calls.Count);
        Assert.Equal(2, server.Stats.Requests);
    }

    [Fact]
    public async Task TheBudget_RefusesARequestBeforeItIsSent()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server);
        var ledger = new TeacherUsageLedger(new TeacherBudget(MaxTotalTokens: 100));

        var e = await Assert.ThrowsAsync<TeacherBudgetExceededException>(() =>
            client.GenerateAsync(TestTeacher.Prompt([2, 2, 2, 2]), TestTeacher.ReplyContext(), Call, ledger));

        Assert.Contains("Teacher:Budget:MaxTotalTokens", e.Message);
        Assert.Equal(0, server.Stats.Requests);
    }

    [Fact]
    public async Task TheDollarBudget_StopsOnceSpent_CarryingEarlierRoundsSpend()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.Prices["*"] = new TokenPrice(2.5m, 10m)));
        // Earlier rounds spent $0.0099 of $0.01: the next request's prompt alone (~1.5k tokens at $2.5/M) passes the limit.
        var ledger = new TeacherUsageLedger(new TeacherBudget(MaxCostUsd: 0.01m), new TeacherUsageTotals(3, 3000, 600, 0.0099m));

        var e = await Assert.ThrowsAsync<TeacherBudgetExceededException>(() =>
            client.GenerateAsync(TestTeacher.Prompt([2, 2, 2, 2]), TestTeacher.ReplyContext(), Call, ledger));
        Assert.Contains("Teacher:Budget:MaxCostUsd", e.Message);
        Assert.Equal(0, server.Stats.Requests);
    }

    [Fact]
    public void ARunsBudget_FallsBackToTheServiceBudget_LimitByLimit()
    {
        var service = new TeacherBudget(MaxTotalTokens: 1_000_000, MaxCostUsd: 5m);
        Assert.Equal(new TeacherBudget(2000, 5m), new TeacherBudget(MaxTotalTokens: 2000).OrElse(service));
        Assert.Equal(service, TeacherBudget.Unlimited.OrElse(service));
        var client = new TeacherClient(TeacherConnection.Parse("Endpoint=http://127.0.0.1:1/v1;Model=m;Key=k"), new TeacherClientOptions { Budget = service });
        Assert.Equal(service, client.DefaultBudget);
    }

    [Fact]
    public void PriceTable_LooksUpByName_ThenStar_ElseFree()
    {
        var table = new TeacherPriceTable(new Dictionary<string, TokenPrice> { ["gpt-4o"] = new(2.5m, 10m), ["*"] = new(1m, 2m) });
        Assert.Equal(2.5m * 1000 / 1_000_000m + 10m * 500 / 1_000_000m, table.PriceOf("GPT-4o").Cost(1000, 500));
        Assert.Equal(new TokenPrice(1m, 2m), table.PriceOf("llama3"));
        Assert.Equal(new TokenPrice(0, 0), TeacherPriceTable.Empty.PriceOf("x"));
        Assert.False(TeacherPriceTable.Empty.HasPrice("x"));
    }
}
