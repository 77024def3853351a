using System.Diagnostics;
using System.Text.Json;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>Fault injection by configuration: 429 with Retry-After, 500, malformed replies, label noise, latency, hangs.</summary>
public sealed class FaultTests
{
    [Fact]
    public async Task TooManyRequests_CarriesRetryAfterInSecondsAndMilliseconds()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:TooManyRequestsRate", "1"), ("Emulator:Faults:RetryAfterMs", "1500"));
        using var http = Emulators.Http(server);
        using var response = await http.PostAsync("v1/chat/completions", Emulators.Body([("user", "hi")]));
        Assert.Equal(429, (int)response.StatusCode);
        Assert.Equal("2", response.Headers.GetValues("Retry-After").Single());
        Assert.Equal("1500", response.Headers.GetValues("retry-after-ms").Single());
        Assert.Equal(1, server.Stats.TooManyRequests);
    }

    [Fact]
    public async Task ServerErrors_Are500()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:ServerErrorRate", "1"));
        using var http = Emulators.Http(server);
        using var response = await http.PostAsync("openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21", Emulators.Body([("user", "hi")]));
        Assert.Equal(500, (int)response.StatusCode);
        Assert.Equal(1, server.Stats.ServerErrors);
    }

    [Fact]
    public async Task MaxInjected_StopsInjectingAfterThatMany()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:TooManyRequestsRate", "1"), ("Emulator:Faults:MaxInjected", "2"));
        using var http = Emulators.Http(server);
        var codes = new List<int>();
        for (var i = 0; i < 4; i++)
            codes.Add((int)(await http.PostAsync("v1/chat/completions", Emulators.Body([("user", "hi")]))).StatusCode);
        Assert.Equal([429, 429, 200, 200], codes);
    }

    [Fact]
    public async Task MalformedReplies_DoNotParse_AndConsumeNoPoolTexts()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:MalformedReplyRate", "1"));
        using var http = Emulators.Http(server);
        using var response = await http.PostAsync("v1/chat/completions", Emulators.Body(Emulators.Prompt([3, 3, 3, 3]), "run-bad"));
        Assert.Equal(200, (int)response.StatusCode);
        var content = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement
            .GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        var parsed = TeacherReplyParser.Parse(content, new TeacherReplyContext { Labels = Emulators.Labels });
        Assert.False(parsed.IsValidReply);
        Assert.Equal(0, server.Engine.UsedCount("run-bad"));
        Assert.Equal(1, server.Stats.Malformed);
    }

    [Theory]
    [InlineData(0.0, 0, 0)]
    [InlineData(0.5, 25, 75)]
    [InlineData(1.0, 100, 100)]
    public async Task LabelNoise_FlipsAboutThatShareOfLabels(double rate, int min, int max)
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:LabelNoiseRate", rate.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using var http = Emulators.Http(server);
        var samples = await Emulators.AskAsync(http, Emulators.Prompt([25, 25, 25, 25]), "run-noise");
        var truth = Emulators.Read("pool.jsonl").Examples.ToDictionary(e => e.Text, e => e.Label);
        var flipped = samples.Count(s => truth[s.Text] != s.Label);
        Assert.Equal(100, samples.Count);
        Assert.InRange(flipped, min, max);
    }

    [Fact]
    public async Task AddedLatency_DelaysEveryAnswer()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:LatencyMs", "300"));
        using var http = Emulators.Http(server);
        var watch = Stopwatch.StartNew();
        using var response = await http.PostAsync("v1/chat/completions", Emulators.Body([("user", "hi")]));
        Assert.Equal(200, (int)response.StatusCode);
        Assert.True(watch.ElapsedMilliseconds >= 280, $"answered in {watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public async Task Hangs_OutlastAClientTimeout()
    {
        // The client's patience starts once the emulator has counted the hang: a fixed client timeout started at the send
        // could fire, on a loaded machine, before the request had even arrived. A 60 s hang leaves no answer a way in first.
        await using var server = await Emulators.StartAsync(("Emulator:Faults:HangRate", "1"), ("Emulator:Faults:HangMs", "60000"));
        using var http = Emulators.Http(server);
        http.Timeout = Timeout.InfiniteTimeSpan; // the test's own token is the client's patience
        using var giveUp = new CancellationTokenSource();
        var request = http.PostAsync("v1/chat/completions", Emulators.Body([("user", "hi")]), giveUp.Token);

        await Emulators.WaitUntilAsync(() => server.Stats.Hangs == 1 || request.IsCompleted);
        Assert.False(request.IsCompleted, "the emulator answered instead of hanging");
        await Task.Delay(300); // the 300 ms a client waits before it gives up
        Assert.False(request.IsCompleted, "the hang did not hold the answer for 300 ms");
        await giveUp.CancelAsync();

        await Assert.ThrowsAnyAsync<TaskCanceledException>(() => request);
        Assert.Equal(1, server.Stats.Hangs);
        Assert.Equal(0, server.Stats.Completed);
    }
}
