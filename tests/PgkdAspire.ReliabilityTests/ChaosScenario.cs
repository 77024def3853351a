using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Azure.Storage.Blobs.Models;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Contracts;
using Pgkd.Storage;
using Xunit.Abstractions;

namespace PgkdAspire.ReliabilityTests;

/// <summary>
/// Issue 19.5, chaos: small runs one after the other through one AppHost while, at seeded random moments, the orchestrator,
/// generator, trainer and evaluator are SIGKILLed and RabbitMQ and Azurite are restarted (each started again at once), for
/// at least 10 minutes (<c>PGKD_CHAOS_MINUTES</c>). <c>PGKD_CHAOS_SEED</c> replays a fault schedule (the printed seed fixes
/// the kinds and the gaps between faults; which step a fault lands in depends on the machine's speed).
///
/// Every run must complete and equal its undisturbed twin (the same request, run alone before the faults): byte-identical
/// shards and the same metrics (accuracy exact, losses within <see cref="LossTolerance"/>). Exact replay needs the
/// generator's requests in sequence (<c>Generator:MaxParallelRequests</c> 1, as the replay tests set it). Every run's blobs
/// must be exactly the layout of <see cref="RunBlobLayout"/> for its rounds: each step's output once, nothing else; and
/// the container holds one folder per run started (a retried <c>POST /v1/runs</c> makes no second run).
///
/// A fault during a round's generation (the generator killed, or the broker or the blob store restarted, before the shard
/// is stored) makes the generator ask the teacher again. The emulator answers a request it was sent before with the reply
/// it gave then, so such a run must equal its twin too. The emulator counts each run's requests
/// (<c>GET /emulator/runs/{id}</c>): a run that sent more than its twin had its teacher asked again; the report counts
/// those runs, and their shards are also checked for validity (shard = accepted count, no duplicate, nothing held out).
/// Any difference from the twin fails the scenario.
/// </summary>
public sealed class ChaosScenario(ITestOutputHelper output)
{
    private static readonly int[] RunSeeds = [7, 11, 13];
    private const int MaxRounds = 2;
    private const int SamplesPerRound = 16;
    private const double LossTolerance = 1e-4;
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(8);

    private static readonly string[] FaultKinds =
        [ServiceNames.Orchestrator, ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator, ServiceNames.Rabbit, ServiceNames.Blobs];

    private static TimeSpan Window =>
        TimeSpan.FromMinutes(double.TryParse(Environment.GetEnvironmentVariable("PGKD_CHAOS_MINUTES"), CultureInfo.InvariantCulture, out var m) && m > 0 ? m : 10);

    private sealed record Fault(int Number, string Kind, double AtSeconds, int? RunNumber, Guid? RunId, string State,
        string Outcome, double RecoverySeconds, bool Injected);

    private sealed class RunOutcome
    {
        public int Number { get; init; }
        public int Seed { get; init; }
        public Guid RunId { get; set; }
        public string Status { get; set; } = "not started";
        public JsonObject? Run { get; set; }
        public Dictionary<string, string> BlobHashes { get; set; } = [];
        public double Seconds { get; set; }
        public string? Error { get; set; }
        public List<string> Problems { get; } = [];
        public List<string> Differences { get; } = [];
        /// <summary>Chat requests the emulator got for this run, repeats included.</summary>
        public int TeacherRequests { get; set; }
        public bool TeacherAskedAgain { get; set; }
    }

    [Fact]
    public async Task Runs_under_random_kills_and_restarts_complete_and_equal_their_undisturbed_twins()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("PGKD_CHAOS_SEED"), out var s) ? s : Random.Shared.Next(1, 1_000_000);
        output.WriteLine($"chaos seed {seed} (PGKD_CHAOS_SEED={seed} replays this fault schedule); fault window {Window.TotalMinutes} min");
        // Exact replay: one teacher request at a time, so a round's requests reach the emulator in the same order every time.
        await using var host = await ReliabilityHost.StartAsync(builder =>
            builder.CreateResourceBuilder<ProjectResource>(ServiceNames.Generator).WithEnvironment("Generator__MaxParallelRequests", "1"));

        // Phase 1: the undisturbed twins, one per run seed.
        var twins = new Dictionary<int, RunOutcome>();
        foreach (var runSeed in RunSeeds)
        {
            var twin = new RunOutcome { Number = 0, Seed = runSeed };
            await ExecuteAsync(host, twin, $"twin-{runSeed}-{Guid.NewGuid():N}");
            Assert.True(twin.Status == "Completed", $"the undisturbed twin of seed {runSeed} did not complete: {twin.Status} {twin.Error} {(string?)twin.Run?["failureReason"]}");
            twin.BlobHashes = await BlobHashesAsync(host, twin.RunId);
            Assert.True(twin.TeacherRequests > 0, $"the emulator counted no request for the twin {twin.RunId}: the per-run count is not read right");
            CheckLayout(twin);
            twins[runSeed] = twin;
            output.WriteLine($"twin seed {runSeed}: {twin.RunId} in {twin.Seconds:F0} s, {Summary(twin.Run!)}");
        }

        // Phase 2: runs back to back while the fault loop injects faults for the whole window.
        var faults = new List<Fault>();
        var runs = new List<RunOutcome>();
        RunOutcome? current = null;
        var chaosClock = Stopwatch.StartNew();
        var injecting = Task.Run(async () =>
        {
            var random = new Random(seed);
            var order = new Queue<string>();
            var number = 0;
            while (chaosClock.Elapsed < Window)
            {
                // Kinds in shuffled blocks of six, so every kind comes up about as often; gaps of 1-10 s between faults (a run of this
                // size takes 3-10 s undisturbed, a restart 3-15 s).
                if (order.Count == 0)
                    foreach (var kind in FaultKinds.OrderBy(_ => random.Next())) order.Enqueue(kind);
                var gap = TimeSpan.FromMilliseconds(random.Next(1_000, 10_000));
                var next = order.Dequeue();
                await Task.Delay(gap);
                number++;
                var target = Volatile.Read(ref current);
                var state = target is null ? "between runs" : await StateAsync(host, target.RunId);
                var at = chaosClock.Elapsed.TotalSeconds;
                var watch = Stopwatch.StartNew();
                string outcome;
                var injected = true;
                try
                {
                    outcome = next is ServiceNames.Rabbit or ServiceNames.Blobs
                        ? await host.RestartAsync(next)
                        : await host.KillAndStartAsync(next);
                }
                catch (Exception e)
                {
                    outcome = $"FAILED: {e.GetType().Name}: {e.Message}";
                    injected = false;
                    // Bring it back anyway, or every later run would wait for a service that is gone.
                    outcome += await StartAgainAsync(host, next);
                }
                var fault = new Fault(number, next, at, target?.Number, target?.RunId, state, outcome, watch.Elapsed.TotalSeconds, injected);
                lock (faults) faults.Add(fault);
                output.WriteLine($"fault {number} at {at:F0} s: {next} during run {target?.Number} ({state}): {outcome}");
            }
        });

        var runNumber = 0;
        while (!injecting.IsCompleted)
        {
            runNumber++;
            var run = new RunOutcome { Number = runNumber, Seed = RunSeeds[(runNumber - 1) % RunSeeds.Length] };
            Volatile.Write(ref current, run);
            runs.Add(run);
            await ExecuteAsync(host, run, $"chaos-{seed}-{runNumber}-{Guid.NewGuid():N}");
            output.WriteLine($"run {runNumber} (seed {run.Seed}) {run.RunId}: {run.Status} in {run.Seconds:F0} s {run.Error}");
        }
        Volatile.Write(ref current, null);
        await injecting;
        var faultSpan = chaosClock.Elapsed;

        // Phase 3: the checks, with every service up again.
        foreach (var run in runs.Where(r => r.Status == "Completed"))
        {
            try
            {
                run.BlobHashes = await BlobHashesAsync(host, run.RunId);
                CheckLayout(run);
                run.TeacherAskedAgain = run.TeacherRequests > twins[run.Seed].TeacherRequests;
                Compare(run, twins[run.Seed]);
                if (run.TeacherAskedAgain) await CheckShardsValidAsync(host, run);
            }
            catch (Exception e)
            {
                run.Problems.Add($"could not be checked: {e.GetType().Name}: {e.Message}");
            }
        }
        var orphans = await OrphansAsync(host, twins.Values.Concat(runs).Where(r => r.RunId != Guid.Empty).Select(r => r.RunId).ToHashSet());

        ReliabilityHost.AssertServedModelCopiesBounded(); // the gateway served every run's model in turn
        var report = Report(seed, faultSpan, faults, runs, twins, orphans);
        Results.Write("Chaos (issue 19.5)", report);
        foreach (var line in report) output.WriteLine(line);

        var failures = new List<string>();
        if (faultSpan < Window) failures.Add($"faults were injected for {faultSpan.TotalMinutes:F1} min, less than {Window.TotalMinutes} min");
        failures.AddRange(faults.Where(f => !f.Injected).Select(f => $"fault {f.Number} ({f.Kind}) could not be injected: {f.Outcome}"));
        foreach (var run in runs)
        {
            if (run.Status != "Completed") failures.Add($"run {run.Number} ({run.RunId}) did not complete: {run.Status} {run.Error} {(string?)run.Run?["failureReason"]}");
            failures.AddRange(run.Problems.Select(p => $"run {run.Number} ({run.RunId}): {p}"));
            if (run.Differences.Count > 0)
                failures.Add($"run {run.Number} ({run.RunId}) differs from its twin (teacher requests {run.TeacherRequests}, " +
                             $"the twin's {twins[run.Seed].TeacherRequests}): {string.Join("; ", run.Differences)}");
        }
        failures.AddRange(orphans.Select(o => $"blob outside any run started: {o}"));
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Starts the demo run (retrying the POST under one Idempotency-Key while the broker or blob store is down) and waits for its end.</summary>
    private static async Task ExecuteAsync(ReliabilityHost host, RunOutcome run, string idempotencyKey)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            var request = await DemoRun.RequestAsync(run.Seed, MaxRounds, SamplesPerRound);
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(3);
            while (true)
            {
                string problem;
                try
                {
                    using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/runs") { Content = JsonContent.Create(request) };
                    message.Headers.Add("Idempotency-Key", idempotencyKey);
                    using var response = await host.Gateway.SendAsync(message);
                    var body = await response.Content.ReadAsStringAsync();
                    if (response.IsSuccessStatusCode)
                    {
                        run.RunId = JsonDocument.Parse(body).RootElement.GetProperty("runId").GetGuid();
                        break;
                    }
                    problem = $"{(int)response.StatusCode}: {body}";
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    problem = e.Message;
                }
                if (DateTime.UtcNow > deadline) throw new InvalidOperationException($"POST /v1/runs kept failing: {problem}");
                await Task.Delay(2000);
            }

            var end = DateTime.UtcNow + RunTimeout;
            while (true)
            {
                try
                {
                    var state = await host.RunAsync(run.RunId);
                    run.Run = state;
                    run.Status = (string?)state["status"] ?? "?";
                    if (run.Status is "Completed" or "Failed" or "Cancelled") break;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
                {
                    // The gateway reads the manifest from the blob store, which may be restarting.
                }
                if (DateTime.UtcNow > end)
                {
                    run.Error = $"not finished after {RunTimeout.TotalMinutes} min";
                    break;
                }
                await Task.Delay(500);
            }
        }
        catch (Exception e)
        {
            run.Error = $"{e.GetType().Name}: {e.Message}";
        }
        run.Seconds = clock.Elapsed.TotalSeconds;
        // Read at once: the emulator keeps the engines (and counts) of its 32 most recently asked runs only.
        if (run.RunId != Guid.Empty)
        {
            try { run.TeacherRequests = await TeacherRequestsAsync(host, run.RunId); }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { run.Error += $" (teacher request count unread: {e.Message})"; }
        }
    }

    /// <summary>
    /// What the run is doing, from its blobs (the manifest gains a round only when the round's first step has answered):
    /// the latest round with guidance (or 0) and which of its step outputs are stored.
    /// </summary>
    private static async Task<string> StateAsync(ReliabilityHost host, Guid runId)
    {
        if (runId == Guid.Empty) return "starting";
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var names = new HashSet<string>(StringComparer.Ordinal);
            var container = await host.RunsContainerAsync();
            await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, RunBlobLayout.Prefix(runId), timeout.Token)) names.Add(blob.Name);
            if (names.Contains(RunBlobLayout.Report(runId))) return "finishing (report stored)";
            var round = Enumerable.Range(1, MaxRounds).Where(r => names.Contains(RunBlobLayout.Guidance(runId, r))).DefaultIfEmpty(0).Max();
            if (round > 0 && !names.Contains(RunBlobLayout.RoundShard(runId, round))) return $"round {round}: generating";
            if (!names.Contains(RunBlobLayout.CheckpointFolder(runId, round) + "training.json")) return $"round {round}: training";
            if (!names.Contains(RunBlobLayout.Evaluation(runId, round, "Validation"))) return $"round {round}: evaluating";
            return $"round {round}: evaluated (deciding, or scoring the test set)";
        }
        catch (Exception e) when (e is OperationCanceledException or Azure.RequestFailedException or HttpRequestException)
        {
            return $"unknown ({e.GetType().Name})";
        }
    }

    private static async Task<string> StartAgainAsync(ReliabilityHost host, string resource)
    {
        var commands = host.App.Services.GetRequiredService<ResourceCommandService>();
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(5));
                await commands.ExecuteCommandAsync(resource, KnownResourceCommands.StartCommand);
                await host.App.ResourceNotifications.WaitForResourceHealthyAsync(resource).WaitAsync(TimeSpan.FromMinutes(2));
                return $"; started again on attempt {attempt}";
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
            }
        }
        return "; NOT started again";
    }

    private static async Task<int> TeacherRequestsAsync(ReliabilityHost host, Guid runId)
    {
        using var emulator = host.App.CreateHttpClient(ServiceNames.TeacherEmulator);
        var counts = await emulator.GetFromJsonAsync<JsonObject>($"/emulator/runs/{runId}");
        return (int)counts!["requests"]!;
    }

    private static async Task<Dictionary<string, string>> BlobHashesAsync(ReliabilityHost host, Guid runId)
    {
        var container = await host.RunsContainerAsync();
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var blob in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, RunBlobLayout.Prefix(runId), default))
        {
            var content = (await container.GetBlobClient(blob.Name).DownloadContentAsync()).Value.Content;
            var name = blob.Name[RunBlobLayout.Prefix(runId).Length..];
            if (!hashes.TryAdd(name, Convert.ToHexString(SHA256.HashData(content.ToMemory().Span))[..16]))
                throw new InvalidOperationException($"blob {blob.Name} listed twice");
        }
        return hashes;
    }

    /// <summary>The run's blobs are exactly what <see cref="RunBlobLayout"/> names for its rounds: each step's output once, nothing else.</summary>
    private static void CheckLayout(RunOutcome run)
    {
        var id = run.RunId;
        var rounds = Rounds(run.Run!);
        string Local(string name) => name[RunBlobLayout.Prefix(id).Length..];
        var expected = new HashSet<string>(StringComparer.Ordinal)
        {
            Local(RunBlobLayout.Manifest(id)), Local(RunBlobLayout.Report(id)),
            Local(RunBlobLayout.SeedTrain(id)), Local(RunBlobLayout.SeedValidation(id)), Local(RunBlobLayout.FeedbackValidation(id)),
            Local(RunBlobLayout.SelectionValidation(id)), Local(RunBlobLayout.Test(id)), Local(RunBlobLayout.Pool(id)),
        };
        foreach (var round in rounds.Select(r => (int)r["round"]!))
        {
            if (round > 0)
            {
                expected.Add(Local(RunBlobLayout.RoundShard(id, round)));
                expected.Add(Local(RunBlobLayout.Guidance(id, round)));
                expected.Add(Local(RunBlobLayout.GenerationSummary(id, round)));
            }
            expected.Add(Local(RunBlobLayout.Evaluation(id, round, "Validation")));
            // Head mode: the head, its metadata and the training summary (the completion marker), nothing else.
            foreach (var file in new[] { "head.onnx", "metadata.json", "training.json" })
                expected.Add(Local(RunBlobLayout.CheckpointFolder(id, round)) + file);
        }
        if ((int?)run.Run!["bestRound"] is { } best) expected.Add(Local(RunBlobLayout.Evaluation(id, best, "Test")));
        var missing = expected.Except(run.BlobHashes.Keys).Order().ToList();
        var extra = run.BlobHashes.Keys.Except(expected).Order().ToList();
        if (missing.Count > 0) run.Problems.Add($"missing step outputs: {string.Join(", ", missing)}");
        if (extra.Count > 0) run.Problems.Add($"blobs outside the layout (orphans or duplicates): {string.Join(", ", extra)}");
    }

    /// <summary>Shards byte for byte and the metrics of every round against the twin; differences go to <see cref="RunOutcome.Differences"/>.</summary>
    private static void Compare(RunOutcome run, RunOutcome twin)
    {
        var mine = Rounds(run.Run!);
        var theirs = Rounds(twin.Run!);
        if (mine.Count != theirs.Count) run.Differences.Add($"{mine.Count} rounds, the twin {theirs.Count}");
        for (var i = 0; i < Math.Min(mine.Count, theirs.Count); i++)
        {
            var r = (int)mine[i]["round"]!;
            if (r > 0)
            {
                var shard = RunBlobLayout.RoundShard(Guid.Empty, r)[RunBlobLayout.Prefix(Guid.Empty).Length..];
                if (run.BlobHashes.GetValueOrDefault(shard) != twin.BlobHashes.GetValueOrDefault(shard))
                    run.Differences.Add($"round {r}: shard bytes differ");
                if ((int?)mine[i]["accepted"] != (int?)theirs[i]["accepted"])
                    run.Differences.Add($"round {r}: accepted {(int?)mine[i]["accepted"]} vs {(int?)theirs[i]["accepted"]}");
            }
            foreach (var field in new[] { "accuracy", "macroF1", "selectionAccuracy", "selectionMacroF1" })
                if ((double?)mine[i][field] != (double?)theirs[i][field])
                    run.Differences.Add($"round {r}: {field} {(double?)mine[i][field]} vs {(double?)theirs[i][field]}");
            foreach (var field in new[] { "validationLoss", "selectionLoss" })
            {
                var (a, b) = ((double?)mine[i][field], (double?)theirs[i][field]);
                if (a is null != b is null || (a is not null && Math.Abs(a.Value - b!.Value) > LossTolerance))
                    run.Differences.Add($"round {r}: {field} {a} vs {b}");
            }
        }
        if ((int?)run.Run!["bestRound"] != (int?)twin.Run!["bestRound"])
            run.Differences.Add($"best round {(int?)run.Run!["bestRound"]} vs {(int?)twin.Run!["bestRound"]}");
        if ((double?)run.Run!["testReport"]?["accuracy"] != (double?)twin.Run!["testReport"]?["accuracy"])
            run.Differences.Add($"test accuracy {(double?)run.Run!["testReport"]?["accuracy"]} vs {(double?)twin.Run!["testReport"]?["accuracy"]}");
    }

    /// <summary>For a run whose teacher was asked again: every shard holds its accepted count, no text twice, nothing held out.</summary>
    private static async Task CheckShardsValidAsync(ReliabilityHost host, RunOutcome run)
    {
        static string Key(string text) => text.Trim().ToLowerInvariant();
        var heldOut = (await host.ReadDatasetAsync(run.RunId, "data/seed-val.jsonl")).Concat(await host.ReadDatasetAsync(run.RunId, "data/test.jsonl"))
            .Select(x => Key(x.Text)).ToHashSet();
        var seen = (await host.ReadDatasetAsync(run.RunId, "data/seed-train.jsonl")).Select(x => Key(x.Text)).ToHashSet();
        foreach (var round in Rounds(run.Run!).Skip(1))
        {
            var r = (int)round["round"]!;
            var samples = await host.ReadDatasetAsync(run.RunId, $"data/round-{r}.jsonl");
            if (samples.Count != (int)round["accepted"]!) run.Problems.Add($"round {r}: shard has {samples.Count} samples, the status says {(int)round["accepted"]!}");
            foreach (var sample in samples)
            {
                if (heldOut.Contains(Key(sample.Text))) run.Problems.Add($"round {r}: held-out text in the shard: {sample.Text}");
                if (!seen.Add(Key(sample.Text))) run.Problems.Add($"round {r}: duplicate text: {sample.Text}");
            }
        }
    }

    /// <summary>Top-level names in the runs container that belong to no run started here (idempotency records aside).</summary>
    private static async Task<List<string>> OrphansAsync(ReliabilityHost host, HashSet<Guid> started)
    {
        var container = await host.RunsContainerAsync();
        var orphans = new List<string>();
        await foreach (var item in container.GetBlobsByHierarchyAsync(BlobTraits.None, BlobStates.None, "/", null, default))
        {
            var top = item.IsPrefix ? item.Prefix.TrimEnd('/') : item.Blob.Name;
            if (top == "idempotency") continue;
            if (!Guid.TryParse(top, out var id) || !started.Contains(id)) orphans.Add(item.IsPrefix ? item.Prefix : item.Blob.Name);
        }
        return orphans;
    }

    private static List<JsonNode> Rounds(JsonObject run) => run["rounds"]?.AsArray().Select(r => r!).ToList() ?? [];

    private static string Summary(JsonObject run) =>
        $"accuracy per round {string.Join(" / ", Rounds(run).Select(r => ((double?)r["accuracy"])?.ToString("F4", CultureInfo.InvariantCulture)))}, " +
        $"best round {(int?)run["bestRound"]}, test {((double?)run["testReport"]?["accuracy"])?.ToString("F4", CultureInfo.InvariantCulture)}";

    private static List<string> Report(int seed, TimeSpan span, List<Fault> faults, List<RunOutcome> runs, Dictionary<int, RunOutcome> twins, List<string> orphans)
    {
        var injected = faults.Where(f => f.Injected).ToList();
        var completed = runs.Where(r => r.Status == "Completed").ToList();
        var equal = completed.Count(r => r.Differences.Count == 0 && r.Problems.Count == 0);
        var reasked = completed.Where(r => r.TeacherAskedAgain).ToList();
        var lines = new List<string>
        {
            $"- seed {seed} (`PGKD_CHAOS_SEED={seed}` replays the schedule); faults from 0 to {faults.Select(f => f.AtSeconds).DefaultIfEmpty(0).Max():F0} s " +
            $"of a {span.TotalMinutes:F1}-minute sequence of runs; runs: demo data, head mode, " +
            $"{MaxRounds} rounds x {SamplesPerRound} samples, run seeds {string.Join("/", RunSeeds)} in turn; generator MaxParallelRequests 1",
            $"- faults injected: {injected.Count} ({string.Join(", ", FaultKinds.Select(k => $"{k} {injected.Count(f => f.Kind == k)}"))}); " +
            $"not injected: {faults.Count - injected.Count}",
            $"- runs started {runs.Count}, completed {completed.Count}; equal to their twin (shards byte-identical, metrics equal, layout exact) " +
            $"{equal}; with the teacher asked again {reasked.Count} (of them equal {reasked.Count(r => r.Differences.Count == 0 && r.Problems.Count == 0)}); " +
            $"differing or with problems {completed.Count(r => r.Differences.Count > 0 || r.Problems.Count > 0)}",
            $"- blobs outside any run started: {(orphans.Count == 0 ? "none" : string.Join(", ", orphans))}",
            "",
            "| twin seed | run | seconds | result |",
            "|---|---|---|---|",
        };
        lines.AddRange(twins.Values.Select(t => $"| {t.Seed} | `{t.RunId.ToString()[..8]}` | {t.Seconds:F0} | {Summary(t.Run!)}; {t.BlobHashes.Count} blobs, {t.TeacherRequests} teacher requests |"));
        lines.AddRange(["", "| fault | at s | kind | run | state when hit | outcome | recovery s |", "|---|---|---|---|---|---|---|"]);
        lines.AddRange(faults.Select(f => $"| {f.Number} | {f.AtSeconds:F0} | {f.Kind} | {f.RunNumber} | {f.State} | {Clean(f.Outcome)} | {f.RecoverySeconds:F0} |"));
        lines.AddRange(["", "| run | seed | id | status | seconds | faults (state when hit) | teacher requests (twin) | vs twin | problems |", "|---|---|---|---|---|---|---|---|---|"]);
        lines.AddRange(runs.Select(r =>
            $"| {r.Number} | {r.Seed} | `{(r.RunId == Guid.Empty ? "-" : r.RunId.ToString()[..8])}` | {r.Status} {Clean(r.Error ?? "")} | {r.Seconds:F0} | " +
            $"{string.Join(", ", faults.Where(f => f.RunId == r.RunId && r.RunId != Guid.Empty).Select(f => $"{f.Kind} ({f.State})"))} | " +
            $"{r.TeacherRequests} ({twins[r.Seed].TeacherRequests}) | " +
            $"{(r.Status != "Completed" ? "" : r.Differences.Count == 0 ? "equal" : (r.TeacherAskedAgain ? "teacher asked again: " : "") + Clean(string.Join("; ", r.Differences)))} | " +
            $"{Clean(string.Join("; ", r.Problems))} |"));
        return lines;
    }

    private static string Clean(string text)
    {
        text = text.ReplaceLineEndings(" ").Replace("|", "/");
        return text.Length <= 300 ? text : text[..300] + "…";
    }
}
