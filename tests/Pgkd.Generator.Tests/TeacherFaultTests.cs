using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>
/// Issue 8 point 2: a round against a faulty teacher ends in bounded time: the shard and its counts of retries by
/// cause, repairs and unusable replies when the teacher recovers; a <see cref="TeacherRoundFailedException"/> that
/// names the teacher, the round and the last error when it stays down.
/// </summary>
public sealed class TeacherFaultTests
{
    private static RoundShardRequest Request(string runId, int round, int[] allocation) =>
        new(runId, round, TestTeacher.RoundInput(allocation, round), TestTeacher.ReplyContext());

    [Fact]
    public async Task AFlakyTeacher_RetriesAreCountedByCause_AndMatchWhatTheEmulatorInjected()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:TooManyRequestsRate", "0.2"), ("Emulator:Faults:RetryAfterMs", "10"),
            ("Emulator:Faults:ServerErrorRate", "0.2"), ("Emulator:Faults:MalformedReplyRate", "0.25"),
            ("Emulator:Faults:HangRate", "0.1"), ("Emulator:Faults:HangMs", "20000"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => { o.MaxRetries = 12; o.RequestTimeout = TimeSpan.FromSeconds(2); }));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4, MaxParallelRequests = 2 });

        var shard = await generator.GenerateAsync(Request("run-flaky-counts", 1, [8, 8, 8, 8]), new TeacherUsageLedger(TeacherBudget.Unlimited));

        var stats = server.Stats;
        Assert.True(stats.TooManyRequests > 0 && stats.ServerErrors > 0 && stats.Malformed > 0 && stats.Hangs > 0,
            $"every fault should be injected at least once: 429 {stats.TooManyRequests}, 500 {stats.ServerErrors}, malformed {stats.Malformed}, hangs {stats.Hangs}");
        Assert.Equal(stats.TooManyRequests, shard.RetriesByCause.GetValueOrDefault(TeacherRetryCause.RateLimited));
        Assert.Equal(stats.ServerErrors, shard.RetriesByCause.GetValueOrDefault(TeacherRetryCause.ServerError));
        // Each hang outlasts the 2 s attempt timeout; a normal answer slower than 2 s on a loaded machine would add one.
        Assert.InRange(shard.RetriesByCause.GetValueOrDefault(TeacherRetryCause.Timeout), stats.Hangs, stats.Hangs + 2);
        Assert.False(shard.RetriesByCause.ContainsKey(TeacherRetryCause.Network));
        // Every malformed reply got one repair turn; a repair that came back malformed too leaves the reply unusable.
        Assert.Equal(stats.Malformed, shard.RepairRequests + shard.UnusableReplies);
        Assert.Equal(shard.RepairRequests - shard.UnusableReplies, shard.RepairedReplies);
        Assert.Equal(32 - shard.UnusableReplies * 4, shard.Examples.Count);
    }

    [Fact]
    public async Task SamplesWithLabelsOutsideTheSet_AreRejectedAndCounted_TheRestAccepted()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:UnknownLabelRate", "0.5"));
        // JSON mode: nothing stops the model from writing a label outside the set, so the parser must.
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.ResponseFormat = TeacherResponseFormat.JsonObject));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 8 });

        var shard = await generator.GenerateAsync(Request("run-unknown-labels", 1, [8, 8, 8, 8]), new TeacherUsageLedger(TeacherBudget.Unlimited));

        var unknown = shard.Rejected.GetValueOrDefault(RejectReason.UnknownLabel);
        Assert.InRange(unknown, 4, 28); // 32 draws at rate 0.5
        Assert.Equal(32, shard.Examples.Count + unknown);
        Assert.All(shard.Examples.Examples, e => Assert.NotEqual(Pgkd.TeacherEmulator.FaultOptions.UnknownLabel, e.Label));
        Assert.Equal("json_object", shard.ResponseMode);
    }

    [Fact]
    public async Task UnderTheLabelEnumSchema_TheSameFaultGivesNoUnknownLabel_OnlyWrongOnesFromTheSet()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:UnknownLabelRate", "0.5"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions()); // Auto: json_schema first
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 8 });

        var shard = await generator.GenerateAsync(Request("run-unknown-labels-schema", 1, [8, 8, 8, 8]), new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.Equal("json_schema", shard.ResponseMode);
        Assert.Equal(0, shard.Rejected.GetValueOrDefault(RejectReason.UnknownLabel));
        Assert.Equal(32, shard.Examples.Count);
        Assert.All(shard.Examples.Examples, e => Assert.Contains(e.Label, TestTeacher.Labels.Names));
    }

    [Fact]
    public async Task ATeacherThatRefusesConnections_FailsTheRoundAfterItsRetries_NamingTeacherRoundAndCause()
    {
        // The emulator started and stopped again: its port now refuses connections.
        Uri endpoint;
        string connection;
        await using (var gone = await TestTeacher.StartEmulatorAsync())
        {
            endpoint = gone.OpenAiEndpoint;
            connection = TestTeacher.ConnectionString(gone, TeacherKind.OpenAI);
        }
        var client = new TeacherClient(TeacherConnection.Parse(connection), TestTeacher.FastOptions(o => o.MaxRetries = 3));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4 });
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() => generator.GenerateAsync(Request("run-refused", 3, [4, 4, 4, 4]), ledger));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
        Assert.IsAssignableFrom<PermanentStepException>(e); // the bus does not redeliver it
        Assert.Equal(3, e.Round);
        Assert.Contains(endpoint.ToString(), e.Message);
        Assert.Contains("round 3", e.Message);
        Assert.Contains("after 4 attempts", e.Message);
        Assert.Contains("network", e.Message);
        Assert.Contains("last: network error", e.Message);
        Assert.All(e.FailedAttempts, f => Assert.Equal(TeacherRetryCause.Network, f.Cause));
        Assert.Equal(0, ledger.Totals.Calls);
    }

    [Fact]
    public async Task ATeacherThatAcceptsConnectionsButNeverAnswers_FailsTheRoundAfterMaxWaitWithoutReply()
    {
        // A black hole: a listener that accepts and never answers (what a proxy in front of a dead teacher can look like).
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var held = new List<TcpClient>();
        using var stopAccepting = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try { while (true) held.Add(await listener.AcceptTcpClientAsync(stopAccepting.Token)); }
            catch (OperationCanceledException) { }
        });
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var client = new TeacherClient(TeacherConnection.Parse($"Endpoint=http://127.0.0.1:{port}/v1;Model={TestTeacher.Model};Key=k;Kind=OpenAI"),
            TestTeacher.FastOptions(o =>
            {
                o.MaxRetries = 1000; // the retries alone would take for ever: the round's bound ends it
                o.RequestTimeout = TimeSpan.FromMilliseconds(300);
                o.MaxWaitWithoutReply = TimeSpan.FromSeconds(2);
            }));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4, MaxParallelRequests = 2 });
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() =>
            generator.GenerateAsync(Request("run-black-hole", 2, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited)));

        clock.Stop();
        await stopAccepting.CancelAsync();
        await accepting;
        foreach (var c in held) c.Dispose();
        Assert.InRange(clock.Elapsed, TimeSpan.FromSeconds(1.9), TimeSpan.FromSeconds(8));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("gave no reply for 2 s in round 2 (Teacher:MaxWaitWithoutReply)", e.Message);
        Assert.Contains("timeout", e.Message);
        Assert.Contains("last: timeout after 0.3 s", e.Message);
        Assert.NotEmpty(e.FailedAttempts);
        Assert.All(e.FailedAttempts, f => Assert.Equal(TeacherRetryCause.Timeout, f.Cause));
    }

    [Fact]
    public async Task OneRequestOutOfRetries_EndsTheOthersInFlightAtOnce()
    {
        // Two requests in flight: the first connection is held without an answer, the second is answered 500.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var held = new List<TcpClient>();
        using var stopAccepting = new CancellationTokenSource();
        var accepting = Task.Run(async () =>
        {
            try
            {
                for (var n = 0; ; n++)
                {
                    var connection = await listener.AcceptTcpClientAsync(stopAccepting.Token);
                    held.Add(connection);
                    if (n % 2 == 0) continue;
                    var stream = connection.GetStream();
                    _ = await stream.ReadAsync(new byte[64 * 1024], stopAccepting.Token); // the request head; its content does not matter
                    await stream.WriteAsync("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), stopAccepting.Token);
                }
            }
            catch (OperationCanceledException) { }
        });
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var client = new TeacherClient(TeacherConnection.Parse($"Endpoint=http://127.0.0.1:{port}/v1;Model={TestTeacher.Model};Key=k;Kind=OpenAI"),
            TestTeacher.FastOptions(o => { o.MaxRetries = 0; o.RequestTimeout = TimeSpan.FromSeconds(60); o.MaxWaitWithoutReply = TimeSpan.FromSeconds(60); }));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4, MaxParallelRequests = 2 });
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() =>
            generator.GenerateAsync(Request("run-one-fails", 1, [2, 2, 2, 2]), new TeacherUsageLedger(TeacherBudget.Unlimited)));

        clock.Stop();
        await stopAccepting.CancelAsync();
        await accepting;
        foreach (var c in held) c.Dispose();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}: the held request was not cancelled");
        Assert.Contains("after 1 attempts", e.Message);
        Assert.Contains("5xx 1", e.Message);
    }

    [Fact]
    public async Task ASlowButAnsweringTeacher_IsNotCutOffByMaxWaitWithoutReply_TheClockRestartsOnEachReply()
    {
        // Each request takes ~400 ms; the round of 8 sequential requests takes ~3.2 s, more than the 2.5 s without reply.
        // The 2.1 s each reply has to spare absorbs a loaded machine (one reply took over 1 s there).
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:LatencyMs", "400"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.MaxWaitWithoutReply = TimeSpan.FromSeconds(2.5)));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 2, MaxParallelRequests = 1 });
        var clock = Stopwatch.StartNew();

        var shard = await generator.GenerateAsync(Request("run-slow", 1, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited));

        Assert.True(clock.Elapsed > TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
        Assert.Equal(16, shard.Examples.Count);
        Assert.Empty(shard.RetriesByCause);
    }

    [Fact]
    public async Task MaxRoundTime_BoundsTheWholeRound_EvenWhileTheTeacherAnswers()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:Faults:LatencyMs", "400"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.MaxRoundTime = TimeSpan.FromSeconds(1)));
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 2, MaxParallelRequests = 1 });
        var clock = Stopwatch.StartNew();

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() =>
            generator.GenerateAsync(Request("run-long", 4, [4, 4, 4, 4]), new TeacherUsageLedger(TeacherBudget.Unlimited)));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.Contains("did not finish round 4 within 1 s (Teacher:MaxRoundTime)", e.Message);
    }

    [Fact]
    public async Task AWrongKey_FailsTheRoundWithoutRetrying_NamingTheSetting()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, key: "wrong-key");
        var generator = new RoundShardGenerator(client);

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() =>
            generator.GenerateAsync(Request("run-key", 1, [1, 1, 1, 1]), new TeacherUsageLedger(TeacherBudget.Unlimited)));

        Assert.Contains("ConnectionStrings:teacher", e.Message);
        Assert.IsType<TeacherConfigurationException>(e.InnerException);
        Assert.Equal(1, server.Stats.Unauthorized);
    }
}
