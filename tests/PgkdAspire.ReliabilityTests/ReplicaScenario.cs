using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Pgkd.Contracts;
using Xunit.Abstractions;

namespace PgkdAspire.ReliabilityTests;

/// <summary>
/// Issue 19, points 4 and 6, through one AppHost started with <c>--replicas:trainer=2 --replicas:evaluator=2
/// --replicas:gateway=2</c>:
/// <list type="bullet">
/// <item>Point 4: four runs at once (head and full mode on ../shared/data/agnews and ../shared/data/banking77), then each
/// configuration again alone (its twin). Each run completes; its shards are byte-identical to its twin's, its accuracies
/// equal and its losses within <see cref="LossTolerance"/>; no command had its effect twice (each (run, round) trained,
/// each (run, round, split) evaluated and each round generated exactly once, counted from every replica's log; every
/// step's output stored once, marked with the one command that made it).</item>
/// <item>Point 6: each twin's completion reaches both gateway replicas, each asked on its own address (not through
/// Aspire's proxy), within <see cref="SwapBound"/> of the run's completion time in its manifest.</item>
/// </list>
/// The exact replay needs the generator's requests of a round in order (Generator:MaxParallelRequests=1; README, Exact
/// replay). Small runs keep it to minutes on 2 cores: see <see cref="Request"/>.
/// </summary>
public sealed class ReplicaScenario(ITestOutputHelper output)
{
    /// <summary>Losses (validation, test) may differ this much between a run and its twin; accuracies, counts and shards not at all.</summary>
    private const double LossTolerance = 1e-4;

    /// <summary>A completed run's model is served by every gateway replica within this time of the run's completion.</summary>
    private static readonly TimeSpan SwapBound = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan ConcurrentTimeout = TimeSpan.FromMinutes(30);
    private static readonly TimeSpan AloneTimeout = TimeSpan.FromMinutes(15);

    private static readonly string[] Replicated = [ServiceNames.Trainer, ServiceNames.Evaluator, ServiceNames.Gateway];

    private sealed record Config(string Dataset, string Mode)
    {
        public override string ToString() => $"{Dataset}/{Mode}";
    }

    private static readonly Config[] Configs =
        [new("agnews", "head"), new("agnews", "full"), new("banking77", "head"), new("banking77", "full")];

    [Fact]
    public async Task Four_runs_at_once_on_replicas_equal_their_twins_alone_and_every_gateway_replica_swaps()
    {
        var missing = Configs.Select(c => c.Dataset).Distinct().Where(d => !File.Exists(Path.Combine(Repository.SharedDataFolder(d), "seed_train.jsonl"))).ToList();
        Assert.True(missing.Count == 0, $"data not found: {string.Join(", ", missing.Select(Repository.SharedDataFolder))} (../shared/data next to the repository)");

        var clock = Stopwatch.StartNew();
        await using var host = await ReliabilityHost.StartAsync(
            // Exact replay: one teacher request at a time per round (two in parallel may take a contested pool text in either order).
            builder => builder.CreateResourceBuilder<ProjectResource>(ServiceNames.Generator).WithEnvironment("Generator__MaxParallelRequests", "1"),
            $"--{ReplicaArgument(ServiceNames.Trainer)}=2", $"--{ReplicaArgument(ServiceNames.Evaluator)}=2", $"--{ReplicaArgument(ServiceNames.Gateway)}=2");
        var instances = new Dictionary<string, string[]>();
        foreach (var service in Replicated) instances[service] = await InstancesAsync(host, service, 2);
        instances[ServiceNames.Generator] = await InstancesAsync(host, ServiceNames.Generator, 1);
        foreach (var service in Replicated)
            Assert.True(instances[service].Length == 2, $"{service}: {instances[service].Length} instance(s) ({string.Join(", ", instances[service])}), expected 2");
        await WaitForEveryInstanceHealthyAsync(host, instances, TimeSpan.FromMinutes(4));
        var started = clock.Elapsed;
        using var logs = new InstanceLogs(host, instances.Values.SelectMany(i => i));

        var failures = new List<string>();
        var lines = new List<string>
        {
            $"AppHost `--replicas:trainer=2 --replicas:evaluator=2 --replicas:gateway=2`, generator `MaxParallelRequests=1`; every instance healthy after {started.TotalSeconds:F0} s.",
            $"Runs: {RequestDescription}.",
            "",
        };

        // Point 4, phase 1: the four runs at once.
        var requests = new Dictionary<Config, JsonObject>();
        foreach (var config in Configs) requests[config] = await Request(config);
        var together = Stopwatch.StartNew();
        // All four accepted first (a refused request fails the scenario at once), then all four awaited.
        var posted = new List<(Config Config, Guid Id, Stopwatch Watch)>();
        foreach (var config in Configs) posted.Add((config, await StartAsync(host, requests[config]), Stopwatch.StartNew()));
        var concurrent = await Task.WhenAll(posted.Select(async p =>
        {
            var end = await host.WaitForEndAsync(p.Id, ConcurrentTimeout);
            return (p.Config, p.Id, Run: end, Seconds: p.Watch.Elapsed.TotalSeconds);
        }));
        together.Stop();
        output.WriteLine($"four runs at once: {together.Elapsed.TotalSeconds:F0} s");

        // Both gateway replicas serve a model from now on, so what follows is a hot swap, not a first load on demand.
        using var gateways = new GatewayReplicas(host, instances[ServiceNames.Gateway]);
        var latest = concurrent.Select(c => c.Run).Where(r => (string?)r["status"] == "Completed").MaxBy(r => DateTimeOffset.Parse((string)r["updatedAt"]!, CultureInfo.InvariantCulture));
        if (latest is not null)
        {
            var want = ModelId(latest);
            var first = await gateways.WaitUntilAllServeAsync(want, DateTimeOffset.UtcNow, SwapBound * 2);
            foreach (var (instance, seen) in first)
                if (seen is null) failures.Add($"gateway {instance} did not serve {want} (the last of the four runs) {SwapBound.TotalSeconds * 2:F0} s after they all ended");
        }

        // Point 4, phase 2, and point 6: each configuration again, alone; each completion must reach both gateway replicas.
        var alone = new List<(Config Config, Guid Id, JsonObject Run, double Seconds, Dictionary<string, double?> SwapSeconds)>();
        foreach (var config in Configs)
        {
            var watch = Stopwatch.StartNew();
            var id = await StartAsync(host, requests[config]);
            var end = await host.WaitForEndAsync(id, AloneTimeout);
            var seconds = watch.Elapsed.TotalSeconds;
            var swaps = new Dictionary<string, double?>();
            if ((string?)end["status"] == "Completed")
            {
                // The completion time the orchestrator wrote; the swap clock starts there (same machine, same clock).
                var completedAt = DateTimeOffset.Parse((string)end["updatedAt"]!, CultureInfo.InvariantCulture);
                foreach (var (instance, seen) in await gateways.WaitUntilAllServeAsync(ModelId(end), completedAt, SwapBound * 2))
                {
                    swaps[instance] = seen?.TotalSeconds;
                    if (seen is null || seen > SwapBound)
                        failures.Add($"gateway {instance} served {ModelId(end)} ({config}) {(seen is null ? "not at all" : $"{seen.Value.TotalSeconds:F1} s")} after its completion; bound {SwapBound.TotalSeconds:F0} s");
                }
            }
            alone.Add((config, id, end, seconds, swaps));
            output.WriteLine($"{config} alone: {seconds:F0} s; swaps {string.Join(", ", swaps.Select(s => $"{s.Key} {s.Value:F1} s"))}");
        }
        await Task.Delay(TimeSpan.FromSeconds(3)); // the last log lines

        // Equality with the twin, and exactly-once effects.
        lines.Add("| configuration | run at once | wall time at once | run alone | wall time alone | rounds | accepted per round | val. accuracy per round | test accuracy | max Δ loss | shards | trained by (round: replica) | check |");
        lines.Add("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        var maxDelta = 0.0;
        foreach (var config in Configs)
        {
            var a = concurrent.Single(c => c.Config == config);
            var b = alone.Single(c => c.Config == config);
            var problems = new List<string>();
            foreach (var (id, run, when) in new[] { (a.Id, a.Run, "at once"), (b.Id, b.Run, "alone") })
            {
                if ((string?)run["status"] != "Completed") problems.Add($"{when}: {(string?)run["status"]}: {(string?)run["failureReason"]}");
                await CheckOnceAsync(host, logs, id, run, when, problems);
            }
            var (delta, shards) = await CompareAsync(host, a.Id, a.Run, b.Id, b.Run, problems);
            maxDelta = Math.Max(maxDelta, delta);
            var trainedBy = string.Join(", ", Rounds(a.Run).Select(r => (int)r["round"]!).Select(r =>
                $"{r}: {string.Join("+", logs.InstancesWith(TrainedLine(a.Id, r)).Select(Short))}"));
            lines.Add($"| {config} | `{a.Id.ToString()[..8]}` | {a.Seconds:F0} s | `{b.Id.ToString()[..8]}` | {b.Seconds:F0} s | {Rounds(a.Run).Count} | " +
                      $"{string.Join(", ", Rounds(a.Run).Skip(1).Select(r => $"{(int?)r["accepted"] ?? 0}/{(int?)r["requested"] ?? 0}"))} | " +
                      $"{string.Join(", ", Rounds(a.Run).Select(r => F4(r["accuracy"])))} | {F4(a.Run["testReport"]?["accuracy"])} | {delta:E1} | {shards} | {trainedBy} | " +
                      $"{(problems.Count == 0 ? "equal, once" : string.Join("; ", problems))} |");
            failures.AddRange(problems.Select(p => $"{config}: {p}"));
        }

        // Competing consumers: with four runs at once both replicas of each worker must have had work.
        var concurrentIds = concurrent.Select(c => c.Id).ToList();
        foreach (var (service, pattern) in new[] { (ServiceNames.Trainer, ": training ("), (ServiceNames.Evaluator, ": accuracy ") })
        {
            var used = instances[service].ToDictionary(i => i, i => logs.Count(i, l => l.Contains(pattern, StringComparison.Ordinal) && concurrentIds.Any(id => l.Contains(id.ToString(), StringComparison.Ordinal))));
            lines.Add($"- {service} steps of the four runs at once, per replica: {string.Join(", ", used.Select(u => $"{u.Key} {u.Value}"))}");
            if (used.Values.Any(n => n == 0)) failures.Add($"{service}: a replica took no step of the four runs at once ({string.Join(", ", used.Select(u => $"{u.Key} {u.Value}"))})");
        }
        lines.Add($"- four runs at once: {together.Elapsed.TotalSeconds:F0} s in all; the four alone one after the other: {alone.Sum(x => x.Seconds):F0} s in all");
        lines.Add($"- largest |Δ| between a run and its twin in validation loss or test loss: {maxDelta:E2} (tolerance {LossTolerance:E0}); accuracies, macro-F1, accepted counts, best round and shards compared exactly");
        lines.Add($"- redeliveries seen (a step announced again from its stored output): trainer {logs.CountAll(l => l.Contains("checkpoint already complete", StringComparison.Ordinal))}, " +
                  $"evaluator {logs.CountAll(l => l.Contains("already evaluated", StringComparison.Ordinal))}, generator {logs.CountAll(l => l.Contains("shard already stored", StringComparison.Ordinal))}");

        var swapLines = alone.SelectMany(x => x.SwapSeconds.Select(s => $"| {x.Config} `{x.Id.ToString()[..8]}` | {s.Key} | {(s.Value is { } v ? v.ToString("F1", CultureInfo.InvariantCulture) + " s" : "never")} |")).ToList();
        var measured = alone.SelectMany(x => x.SwapSeconds.Values).OfType<double>().ToList();
        Results.Write("Issue 19.4: four runs at once on two trainers and two evaluators, each against its twin alone", [.. lines, .. failures.Select(f => "- FAILED: " + f)]);
        Results.Write("Issue 19.6: hot swap on two gateway replicas",
        [
            $"Each replica asked on its own address (POST /v1/classify every 100 ms, the answer's `model`), the clock started at the run's completion time in its manifest (`updatedAt`); bound {SwapBound.TotalSeconds:F0} s.",
            "",
            "| run completed (alone) | gateway replica | served after |",
            "|---|---|---|",
            .. swapLines,
            "",
            measured.Count == 0 ? "- no swap measured" : $"- slowest {measured.Max():F1} s, median {measured.Order().ElementAt(measured.Count / 2):F1} s over {measured.Count} swaps",
        ]);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // Two gateways on one machine keep their model copies apart and each within its bound (CheckpointGraphs).
        ReliabilityHost.AssertServedModelCopiesBounded();
    }

    // ---- the runs ----

    private static string ReplicaArgument(string service) => $"replicas:{service}";

    private const string RequestDescription =
        "per dataset the first 40 (agnews) / 3 (banking77) training texts per label, 25 / 3 validation texts per label, 75 / 4 test texts " +
        "per label and a pool of 100 / 10 texts per label (file order); maxRounds 2, 32 / 80 samples a round, seed 11, selectionShare 0, max length 64; " +
        "head mode with its defaults (30 epochs a round on the frozen encoder), full mode 1 epoch in round 0 and 1 a round after";

    /// <summary>One configuration's run: a stratified slice of ../shared/data/&lt;dataset&gt; (read there, never copied).</summary>
    private static async Task<JsonObject> Request(Config config)
    {
        var folder = Repository.SharedDataFolder(config.Dataset);
        var agnews = config.Dataset == "agnews";
        async Task<string> Slice(string file, int perLabel)
        {
            var kept = new List<string>();
            var counts = new Dictionary<string, int>();
            foreach (var line in await File.ReadAllLinesAsync(Path.Combine(folder, file)))
            {
                if (line.Trim().Length == 0) continue;
                var label = JsonDocument.Parse(line).RootElement.GetProperty("label").GetString()!;
                if (counts.GetValueOrDefault(label) >= perLabel) continue;
                counts[label] = counts.GetValueOrDefault(label) + 1;
                kept.Add(line);
            }
            return string.Join('\n', kept) + "\n";
        }
        var student = config.Mode == "full"
            ? new JsonObject { ["mode"] = "full", ["epochsPerRound"] = 1, ["seedEpochs"] = 1, ["maxLength"] = 64 }
            : new JsonObject { ["mode"] = "head", ["maxLength"] = 64 };
        return new JsonObject
        {
            ["labels"] = new JsonArray((await File.ReadAllLinesAsync(Path.Combine(folder, "labels.txt"))).Where(l => l.Trim().Length > 0)
                .Select(l => (JsonNode)JsonValue.Create(l.Split('\t')[0].Trim())).ToArray()),
            ["train"] = await Slice("seed_train.jsonl", agnews ? 40 : 3),
            ["validation"] = await Slice("seed_val.jsonl", agnews ? 25 : 3),
            ["test"] = await Slice("test.jsonl", agnews ? 75 : 4),
            ["pool"] = await Slice("pool.jsonl", agnews ? 100 : 10),
            // A round asks for at least one sample per class (FloorPerClass 1): 80 for banking77's 77 classes.
            ["configuration"] = new JsonObject { ["maxRounds"] = 2, ["samplesPerRound"] = agnews ? 32 : 80, ["seed"] = 11, ["selectionShare"] = 0 },
            ["student"] = student,
        };
    }

    private static async Task<Guid> StartAsync(ReliabilityHost host, JsonObject request)
    {
        using var created = await host.Gateway.PostAsJsonAsync("/v1/runs", request);
        var body = await created.Content.ReadAsStringAsync();
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"POST /v1/runs answered {(int)created.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("runId").GetGuid();
    }

    private static List<JsonNode> Rounds(JsonObject run) => run["rounds"]?.AsArray().Select(r => r!).ToList() ?? [];

    private static string ModelId(JsonObject run) => $"{(Guid)run["runId"]!:D}/round-{(int)run["bestRound"]!}";

    private static string F4(JsonNode? value) => value is null ? "–" : ((double)value).ToString("F4", CultureInfo.InvariantCulture);

    private static string Short(string instance) => instance.Length > 14 ? instance[..14] : instance;

    // ---- equality with the twin ----

    /// <summary>Shards byte for byte, accepted counts, accuracies and best round exactly, losses within the tolerance; returns the largest loss Δ.</summary>
    private static async Task<(double MaxDelta, string Shards)> CompareAsync(ReliabilityHost host, Guid a, JsonObject runA, Guid b, JsonObject runB, List<string> problems)
    {
        var ra = Rounds(runA);
        var rb = Rounds(runB);
        if (ra.Count != rb.Count) problems.Add($"{ra.Count} rounds at once, {rb.Count} alone");
        if ((int?)runA["bestRound"] != (int?)runB["bestRound"]) problems.Add($"best round {(int?)runA["bestRound"]} at once, {(int?)runB["bestRound"]} alone");
        var maxDelta = 0.0;
        void Close(string what, JsonNode? x, JsonNode? y)
        {
            if (x is null || y is null) { if (x is not null || y is not null) problems.Add($"{what}: {x?.ToJsonString() ?? "none"} vs {y?.ToJsonString() ?? "none"}"); return; }
            var d = Math.Abs((double)x - (double)y);
            maxDelta = Math.Max(maxDelta, d);
            if (d > LossTolerance) problems.Add($"{what}: {(double)x:R} at once, {(double)y:R} alone (|Δ| {d:E2} > {LossTolerance:E0})");
        }
        void Exact(string what, JsonNode? x, JsonNode? y)
        {
            if (x?.ToJsonString() != y?.ToJsonString()) problems.Add($"{what}: {x?.ToJsonString() ?? "none"} at once, {y?.ToJsonString() ?? "none"} alone");
        }
        var identical = 0;
        for (var i = 0; i < Math.Min(ra.Count, rb.Count); i++)
        {
            var r = (int)ra[i]["round"]!;
            Exact($"round {r} accepted", ra[i]["accepted"], rb[i]["accepted"]);
            Exact($"round {r} accuracy", ra[i]["accuracy"], rb[i]["accuracy"]);
            Close($"round {r} validation loss", ra[i]["validationLoss"], rb[i]["validationLoss"]);
            Exact($"round {r} macro-F1", ra[i]["macroF1"], rb[i]["macroF1"]);
            if (r == 0) continue;
            var (sa, sb) = (await ShardHashAsync(host, a, r), await ShardHashAsync(host, b, r));
            if (sa is null || sa != sb) problems.Add($"round {r} shard differs: {sa?[..12] ?? "missing"} at once, {sb?[..12] ?? "missing"} alone");
            else identical++;
        }
        Exact("test accuracy", runA["testReport"]?["accuracy"], runB["testReport"]?["accuracy"]);
        Exact("test macro-F1", runA["testReport"]?["macroF1"], runB["testReport"]?["macroF1"]);
        Close("test loss", runA["testReport"]?["meanCrossEntropy"], runB["testReport"]?["meanCrossEntropy"]);
        return (maxDelta, $"{identical} of {Math.Max(ra.Count, rb.Count) - 1} byte-identical");
    }

    private static async Task<string?> ShardHashAsync(ReliabilityHost host, Guid run, int round)
    {
        var blob = (await host.RunsContainerAsync()).GetBlobClient($"{run:D}/data/round-{round}.jsonl");
        if (!(await blob.ExistsAsync()).Value) return null;
        return Convert.ToHexString(SHA256.HashData((await blob.DownloadContentAsync()).Value.Content.ToArray()));
    }

    // ---- exactly once ----

    private static string TrainedLine(Guid run, int round) => $"Run {run:D} round {round}: training (";

    /// <summary>
    /// Each round generated (rounds 1..n), trained and evaluated on validation exactly once across every replica (counted
    /// from their logs: the line each handler writes when it does the work, not when it re-announces stored output), the
    /// test set evaluated once; and every step's stored output marked with one command (<c>pgkd_command</c>).
    /// </summary>
    private static async Task CheckOnceAsync(ReliabilityHost host, InstanceLogs logs, Guid id, JsonObject run, string when, List<string> problems)
    {
        var container = await host.RunsContainerAsync();
        var markers = new Dictionary<string, BlobItem>();
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, $"{id:D}/", default))
            markers[blob.Name[(id.ToString().Length + 1)..]] = blob;

        foreach (var round in Rounds(run).Select(r => (int)r["round"]!))
        {
            var trained = logs.CountAll(l => l.Contains(TrainedLine(id, round), StringComparison.Ordinal));
            if (trained != 1) problems.Add($"{when}: round {round} trained {trained} times");
            // The evaluator logs its accuracy line after every delivery, and "already evaluated" before it when it only re-announces.
            var evaluated = logs.CountAll(l => l.Contains($"Run {id:D} round {round} Validation: accuracy", StringComparison.Ordinal))
                            - logs.CountAll(l => l.Contains($"Run {id:D} round {round}: Validation already evaluated", StringComparison.Ordinal));
            if (evaluated != 1) problems.Add($"{when}: round {round} evaluated {evaluated} times");
            if (round > 0)
            {
                var generated = logs.CountAll(l => l.Contains($"Run {id:D} round {round}: teacher gave", StringComparison.Ordinal));
                if (generated != 1) problems.Add($"{when}: round {round} generated {generated} times");
            }
            foreach (var marker in new[] { $"checkpoints/round-{round}/training.json", $"evaluations/round-{round}-validation.json" }
                         .Concat(round > 0 ? [$"generations/round-{round}.json"] : []))
            {
                if (!markers.TryGetValue(marker, out var item)) problems.Add($"{when}: {marker} missing");
                else if (!item.Metadata.TryGetValue("pgkd_command", out var command) || string.IsNullOrEmpty(command))
                    problems.Add($"{when}: {marker} names no command");
            }
        }
        var tested = logs.CountAll(l => l.Contains($"Run {id:D} round ", StringComparison.Ordinal) && l.Contains(" Test: accuracy", StringComparison.Ordinal))
                     - logs.CountAll(l => l.Contains($"Run {id:D} round ", StringComparison.Ordinal) && l.Contains(": Test already evaluated", StringComparison.Ordinal));
        if (tested != 1) problems.Add($"{when}: test set evaluated {tested} times");
    }

    // ---- instances, their health and their logs ----

    /// <summary>The ids of a service's processes (one per replica), as its resource events name them; waits until there are <paramref name="expected"/>.</summary>
    private static async Task<string[]> InstancesAsync(ReliabilityHost host, string service, int expected)
    {
        var ids = new SortedSet<string>(StringComparer.Ordinal);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            // Only ids with a process: a name without one (were Aspire to publish the resource's own name too) is no replica.
            await foreach (var e in host.App.ResourceNotifications.WatchAsync(cts.Token))
                if (e.Resource.Name == service && e.Snapshot.Properties.Any(p => p.Name == "executable.pid" && p.Value is not null)
                    && ids.Add(e.ResourceId) && ids.Count >= expected) break;
        }
        catch (OperationCanceledException) { } // fewer than expected: the caller says so
        return [.. ids];
    }

    /// <summary>Aspire's wait for a resource returns once any replica is healthy; this waits for every one.</summary>
    private static async Task WaitForEveryInstanceHealthyAsync(ReliabilityHost host, Dictionary<string, string[]> instances, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        foreach (var (service, names) in instances)
            foreach (var name in names)
            {
                try
                {
                    await host.App.ResourceNotifications.WaitForResourceAsync(service,
                        e => e.ResourceId == name && e.Snapshot.HealthStatus == HealthStatus.Healthy, cts.Token);
                }
                catch (OperationCanceledException)
                {
                    throw new TimeoutException($"{service} instance {name} was not healthy after {timeout}");
                }
            }
    }

    /// <summary>Every line each instance writes, from the start on (Aspire's resource logs, per replica).</summary>
    private sealed class InstanceLogs : IDisposable
    {
        private readonly ConcurrentDictionary<string, List<string>> _lines = new();
        private readonly CancellationTokenSource _stop = new();

        public InstanceLogs(ReliabilityHost host, IEnumerable<string> instances)
        {
            var logger = host.App.Services.GetRequiredService<ResourceLoggerService>();
            foreach (var instance in instances)
            {
                var lines = _lines[instance] = [];
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await foreach (var batch in logger.WatchAsync(instance).WithCancellation(_stop.Token))
                            lock (lines) lines.AddRange(batch.Select(l => l.Content));
                    }
                    catch (OperationCanceledException) { }
                });
            }
        }

        public int Count(string instance, Func<string, bool> match)
        {
            var lines = _lines[instance];
            lock (lines) return lines.Count(match);
        }

        public int CountAll(Func<string, bool> match) => _lines.Keys.Sum(i => Count(i, match));

        public IEnumerable<string> InstancesWith(string text) => _lines.Keys.Where(i => Count(i, l => l.Contains(text, StringComparison.Ordinal)) > 0).Order();

        public void Dispose()
        {
            _stop.Cancel();
            _stop.Dispose();
        }
    }

    /// <summary>Each gateway replica on its own address (its ASPNETCORE_URLS), not through Aspire's proxy, which picks one.</summary>
    private sealed class GatewayReplicas : IDisposable
    {
        private readonly Dictionary<string, HttpClient> _clients = new();

        public GatewayReplicas(ReliabilityHost host, IEnumerable<string> instances)
        {
            foreach (var instance in instances)
            {
                if (!host.App.ResourceNotifications.TryGetCurrentState(instance, out var state))
                    throw new InvalidOperationException($"no state for gateway instance {instance}");
                var urls = state.Snapshot.EnvironmentVariables.FirstOrDefault(v => v.Name == "ASPNETCORE_URLS")?.Value
                           ?? throw new InvalidOperationException($"gateway instance {instance} has no ASPNETCORE_URLS");
                var url = urls.Split(';', StringSplitOptions.RemoveEmptyEntries).First(u => u.StartsWith("http://", StringComparison.Ordinal))
                    .Replace("+", "localhost", StringComparison.Ordinal).Replace("*", "localhost", StringComparison.Ordinal);
                var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30) };
                client.DefaultRequestHeaders.Add("X-Api-Key", ReliabilityHost.ApiKey);
                _clients[instance] = client;
            }
            if (_clients.Values.Select(c => c.BaseAddress).Distinct().Count() != _clients.Count)
                throw new InvalidOperationException("two gateway instances share an address: " + string.Join(", ", _clients.Select(c => $"{c.Key} {c.Value.BaseAddress}")));
        }

        /// <summary>The model a replica serves by default: the <c>model</c> of a classification, or null (no model, or not answering).</summary>
        private static async Task<string?> ServedAsync(HttpClient client)
        {
            try
            {
                using var response = await client.PostAsJsonAsync("/v1/classify", new { text = "Oil prices rose as the bank cut its rates" });
                if (!response.IsSuccessStatusCode) return null;
                return (string?)(await response.Content.ReadFromJsonAsync<JsonObject>())?["model"];
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { return null; }
        }

        /// <summary>
        /// Asks every replica every 100 ms until it serves <paramref name="model"/>; per replica, the time from
        /// <paramref name="since"/> to the first answer with it (an upper bound: the swap happened before that answer), or
        /// null when it did not within <paramref name="limit"/> of now.
        /// </summary>
        public async Task<Dictionary<string, TimeSpan?>> WaitUntilAllServeAsync(string model, DateTimeOffset since, TimeSpan limit)
        {
            var deadline = DateTimeOffset.UtcNow + limit;
            var seen = await Task.WhenAll(_clients.Select(async c =>
            {
                while (DateTimeOffset.UtcNow < deadline)
                {
                    if (await ServedAsync(c.Value) == model) return (c.Key, (TimeSpan?)(DateTimeOffset.UtcNow - since));
                    await Task.Delay(100);
                }
                return (c.Key, (TimeSpan?)null);
            }));
            return seen.ToDictionary(s => s.Key, s => s.Item2);
        }

        public void Dispose()
        {
            foreach (var client in _clients.Values) client.Dispose();
        }
    }
}
