using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pgkd.Contracts;
using Pgkd.Student;

namespace PgkdAspire.ReliabilityTests;

/// <summary>
/// Issue 18, point 7: the gateway under a mixed workload through the real AppHost, 32 connections for 120 s after a
/// warm-up: unicode-heavy single texts (emoji, CJK, Arabic, combining marks, zero-width characters, runs of thousands of
/// characters), 64-text batches, small batches, oversized batches (413) and malformed bodies (400). Clients honour
/// Retry-After when shed. It reports throughput, p50/p99 of accepted requests, shed requests and the gateway's RSS after
/// warm-up and at the end, and compares throughput with ONNX Runtime in-process on the same texts, length-sorted,
/// measured in the same run while the gateway is idle. Targets: RSS at the end at most 1.25x warm-up and under 1 GiB;
/// no 5xx but 503 shedding; accepted p99 under 2 s; throughput at least 0.85 of in-process.
/// </summary>
public sealed class ServingLoadScenario
{
    private const int Connections = 32;
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Measured = TimeSpan.FromSeconds(120);

    private enum Kind { Single, Batch64, SmallBatch, Oversized, Malformed }

    private sealed record Request(Kind Kind, byte[] Body, int Texts);

    [Fact]
    public async Task The_gateway_holds_under_a_mixed_workload_at_32_connections()
    {
        await using var host = await ReliabilityHost.StartAsync();
        var runId = await host.StartRunAsync();
        var run = await host.WaitForEndAsync(runId, TimeSpan.FromMinutes(10));
        Assert.True((string?)run["status"] == "Completed", run.ToJsonString());
        var bestRound = (int)run["bestRound"]!;

        var requests = Workload(new Random(18), 4000);
        var gatewayUrl = host.GatewayDirectUrl() ?? host.Gateway.BaseAddress!;
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Connections, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) };
        using var client = new HttpClient(handler) { BaseAddress = gatewayUrl, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Add("X-Api-Key", ReliabilityHost.ApiKey);

        // The served model, and the same texts in-process (length-sorted batches of 64, 2 threads), while the gateway idles.
        var modelDirectory = Path.Combine(host.Arguments.DataDirectory, "served-model");
        var container = await host.RunsContainerAsync();
        Directory.CreateDirectory(modelDirectory);
        // A head-only checkpoint (head mode) stores head.onnx, and OnnxStudent composes model.onnx from it as the gateway does.
        foreach (var file in new[] { "metadata.json", "model.onnx", "head.onnx" })
        {
            var blob = container.GetBlobClient($"{runId:D}/checkpoints/round-{bestRound}/{file}");
            if (file == "metadata.json" || await blob.ExistsAsync()) await blob.DownloadToAsync(Path.Combine(modelDirectory, file));
        }
        var sameTexts = requests.Where(r => r.Kind is Kind.Single or Kind.Batch64 or Kind.SmallBatch)
            .SelectMany(r => JsonNode.Parse(r.Body)!["texts"]?.AsArray().Select(t => (string)t!) ?? [(string)JsonNode.Parse(r.Body)!["text"]!])
            .Take(3000).ToArray();
        var inProcessBefore = InProcessTextsPerSecond(modelDirectory, sameTexts);

        var pid = host.ProcessIdOf(ServiceNames.Gateway);
        await DriveAsync(client, requests, WarmUp);
        await Task.Delay(2000);
        var rssWarm = ReliabilityHost.RssKiB(pid);
        var result = await DriveAsync(client, requests, Measured);
        await Task.Delay(2000);
        var rssEnd = ReliabilityHost.RssKiB(pid);
        var inProcessAfter = InProcessTextsPerSecond(modelDirectory, sameTexts);
        var inProcess = (inProcessBefore + inProcessAfter) / 2;

        var accepted = result.AcceptedLatencies.Order().ToArray();
        double Percentile(double p) => accepted.Length == 0 ? double.NaN : accepted[Math.Min(accepted.Length - 1, (int)Math.Ceiling(p * accepted.Length) - 1)];
        var throughput = result.AcceptedTexts / Measured.TotalSeconds;
        var ratio = throughput / inProcess;
        var failures = new List<string>();
        if (rssEnd > rssWarm * 1.25) failures.Add($"RSS grew from {rssWarm / 1024} MiB after warm-up to {rssEnd / 1024} MiB (> 1.25x)");
        if (rssEnd >= 1024 * 1024) failures.Add($"RSS at the end {rssEnd / 1024} MiB (not under 1 GiB)");
        if (result.Unexpected.Count > 0) failures.Add($"{result.Unexpected.Count} unexpected answers, e.g. {string.Join("; ", result.Unexpected.Take(5))}");
        if (Percentile(0.99) >= 2.0) failures.Add($"accepted p99 {Percentile(0.99):F2} s (not under 2 s)");
        if (ratio < 0.85) failures.Add($"throughput {throughput:F0} texts/s is {ratio:F2} of in-process {inProcess:F0} (target 0.85)");

        Results.Write($"Issue 18, point 7: serving under a mixed workload ({Connections} connections, {Measured.TotalSeconds:F0} s after {WarmUp.TotalSeconds:F0} s warm-up)",
        [
            $"- requests: {result.Sent} sent; {result.Accepted} accepted ({result.AcceptedTexts} texts); {result.Shed} shed with 503 (Retry-After honoured, waited {result.ShedWait.TotalSeconds:F0} s in all); " +
            $"{result.RefusedAsDue} refused as due (413 oversized, 400 malformed); {result.Unexpected.Count} unexpected",
            $"- accepted latency: p50 {Percentile(0.5) * 1000:F0} ms, p99 {Percentile(0.99) * 1000:F0} ms, max {(accepted.Length == 0 ? double.NaN : accepted[^1] * 1000):F0} ms",
            $"- throughput: {throughput:F0} texts/s through the gateway; in-process ONNX Runtime on the same {sameTexts.Length} texts, length-sorted batches of 64, 2 threads: " +
            $"{inProcessBefore:F0} before and {inProcessAfter:F0} texts/s after the load; ratio {ratio:F2} (target >= 0.85)",
            $"- gateway RSS: {rssWarm / 1024} MiB after warm-up, {rssEnd / 1024} MiB at the end ({(double)rssEnd / rssWarm:F2}x; targets <= 1.25x and < 1024 MiB)",
            $"- status counts: {string.Join(", ", result.Statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}"))}",
            $"- gateway address: {gatewayUrl} ({(host.GatewayDirectUrl() is null ? "through the Aspire proxy" : "Kestrel directly")}); verdict: {(failures.Count == 0 ? "all targets met" : string.Join("; ", failures))}",
        ]);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static double InProcessTextsPerSecond(string modelDirectory, string[] texts)
    {
        using var student = OnnxStudent.Load(modelDirectory, new OnnxRunOptions { Threads = 2, PreferCuda = false, BatchSize = 64 });
        student.PredictProbabilities(texts.Take(128).ToArray()); // warm-up
        var best = double.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            var watch = Stopwatch.StartNew();
            student.PredictProbabilities(texts);
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return texts.Length / best;
    }

    private sealed class LoadResult
    {
        public int Sent, Accepted, AcceptedTexts, Shed, RefusedAsDue;
        public TimeSpan ShedWait;
        public readonly List<double> AcceptedLatencies = [];
        public readonly List<string> Unexpected = [];
        public readonly Dictionary<int, int> Statuses = [];
    }

    /// <summary>Closed-loop clients, one per connection, each taking the next request of the workload until the time is up.</summary>
    private static async Task<LoadResult> DriveAsync(HttpClient client, IReadOnlyList<Request> requests, TimeSpan duration)
    {
        var result = new LoadResult();
        var next = -1;
        var stopAt = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        async Task ClientAsync()
        {
            while (Stopwatch.GetTimestamp() < stopAt)
            {
                var request = requests[(int)((uint)Interlocked.Increment(ref next) % (uint)requests.Count)];
                using var content = new ByteArrayContent(request.Body);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                var watch = Stopwatch.StartNew();
                HttpStatusCode status;
                TimeSpan? retryAfter = null;
                string? body = null;
                try
                {
                    using var response = await client.PostAsync("/v1/classify", content);
                    status = response.StatusCode;
                    retryAfter = response.Headers.RetryAfter?.Delta;
                    if (status != HttpStatusCode.OK) body = await response.Content.ReadAsStringAsync();
                    else await response.Content.ReadAsByteArrayAsync();
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    lock (result) { result.Sent++; result.Unexpected.Add($"{request.Kind}: {e.GetType().Name} {e.Message}"); }
                    continue;
                }
                var seconds = watch.Elapsed.TotalSeconds;
                lock (result)
                {
                    result.Sent++;
                    result.Statuses[(int)status] = result.Statuses.GetValueOrDefault((int)status) + 1;
                    var expected = request.Kind switch { Kind.Oversized => HttpStatusCode.RequestEntityTooLarge, Kind.Malformed => HttpStatusCode.BadRequest, _ => HttpStatusCode.OK };
                    if (status == expected && status == HttpStatusCode.OK)
                    {
                        result.Accepted++;
                        result.AcceptedTexts += request.Texts;
                        result.AcceptedLatencies.Add(seconds);
                    }
                    else if (status == expected) result.RefusedAsDue++;
                    else if (status == HttpStatusCode.ServiceUnavailable && retryAfter is not null) result.Shed++;
                    else result.Unexpected.Add($"{request.Kind}: {(int)status} {body?[..Math.Min(body.Length, 200)]}");
                }
                if (status == HttpStatusCode.ServiceUnavailable && retryAfter is { } wait)
                {
                    lock (result) result.ShedWait += wait;
                    await Task.Delay(wait);
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Connections).Select(_ => Task.Run(ClientAsync)));
        return result;
    }

    /// <summary>A seeded mix of requests, their bodies serialized up front so the clients spend no CPU on JSON.</summary>
    private static List<Request> Workload(Random random, int count)
    {
        var agnews = File.ReadLines(Path.Combine(AgNews.ExpectedFolder, "test.jsonl"))
            .Take(2000).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
        string[] unicode =
        [
            "🚀🚀 rocket 🌕 moon landing 🎉🎉 the crowd cheered 👏👏👏",
            "东京股市周二收盘上涨，科技股领涨，日经指数创下新高。",
            "ارتفعت أسعار النفط بعد قرار أوبك خفض الإنتاج مجددا",
            "Cafe\u0301 owners in Zu\u0308rich protest the new tax\u200b\u200b\u200d law",
            "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ and ｅｍｏｊｉ 🧪🧬 in a science headline",
            "Z̸̢̛a̵͚͝l̴̰̇g̶̣̀o̷̜͠ text in a markets story about shares and profit",
        ];
        string Text()
        {
            var pick = random.NextDouble();
            if (pick < 0.15) return unicode[random.Next(unicode.Length)] + " " + agnews[random.Next(agnews.Length)];
            if (pick < 0.22)
            {
                // A run of thousands of characters (the model reads its first 128 tokens; the gateway takes up to 10,000 characters).
                var builder = new StringBuilder();
                while (builder.Length < random.Next(2000, 9500)) builder.Append(agnews[random.Next(agnews.Length)]).Append(' ');
                return builder.ToString()[..Math.Min(builder.Length, 10_000)];
            }
            return agnews[random.Next(agnews.Length)];
        }
        byte[] Json(JsonNode node) => Encoding.UTF8.GetBytes(node.ToJsonString());
        JsonNode Texts(int n) => new JsonObject { ["texts"] = new JsonArray(Enumerable.Range(0, n).Select(_ => (JsonNode)JsonValue.Create(Text())!).ToArray()) };

        var requests = new List<Request>(count);
        for (var i = 0; i < count; i++)
        {
            var pick = random.NextDouble();
            requests.Add(pick switch
            {
                < 0.45 => new Request(Kind.Single, Json(new JsonObject { ["text"] = Text() }), 1),
                < 0.75 => new Request(Kind.Batch64, Json(Texts(64)), 64),
                < 0.90 => random.Next(2, 17) is var n ? new Request(Kind.SmallBatch, Json(Texts(n)), n) : throw new InvalidOperationException(),
                < 0.95 => new Request(Kind.Oversized, Json(Texts(65)), 65),
                _ => new Request(Kind.Malformed, Encoding.UTF8.GetBytes("{\"texts\": [\"an unterminated"), 0),
            });
        }
        return requests;
    }
}
