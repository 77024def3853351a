using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Contracts;

namespace PgkdAspire.ReliabilityTests;

/// <summary>
/// Issue 8, points 1, 2 and 5, each through a real AppHost. Minutes long: `./build.sh reliability` runs them and
/// docs/reliability.md reports what they measured (artifacts/reliability/results.md).
/// </summary>
public sealed class ReliabilityScenarios
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Point 1: an undisturbed run, a run whose trainer is SIGKILLed while training round 0 and whose evaluator is
    /// SIGKILLed while evaluating round 1, and a run during which RabbitMQ and then Azurite are restarted. Each run
    /// completes; no sample is lost or duplicated (shard = accepted count, no text twice, none held out); round 0
    /// (no teacher involved) scores the same in all three. Then point 5, the load test, on the same gateway.
    /// </summary>
    [Fact]
    public async Task Infrastructure_faults_mid_run_and_load()
    {
        await using var host = await ReliabilityHost.StartAsync();
        var report = new List<string>
        {
            "| run | disturbance | status | rounds | accepted per round | round-0 val. accuracy / loss | best round | test accuracy | check |",
            "|---|---|---|---|---|---|---|---|---|",
        };
        var failures = new List<string>();

        Baseline? baseline = null;
        async Task Scenario(string name, Func<Guid, List<string>, Task> disturb)
        {
            var disturbances = new List<string>();
            Guid id = default;
            try
            {
                var clock = Stopwatch.StartNew();
                id = await host.StartRunAsync();
                await disturb(id, disturbances);
                var finished = await host.WaitForEndAsync(id, RunTimeout);
                disturbances.Add($"finished after {clock.Elapsed.TotalSeconds:F0} s");
                var own = await CheckRunAsync(host, id, finished, name, string.Join("; ", disturbances), report, failures, baseline);
                baseline ??= own;
            }
            catch (Exception e)
            {
                var what = disturbances.Count == 0 ? "" : string.Join("; ", disturbances) + "; ";
                report.Add($"| {name} `{id.ToString()[..8]}` | {what} | **not finished** | | | | | | {e.GetType().Name}: {Shorten(e.Message)} |");
                failures.Add($"run {name}: {e.Message}");
            }
        }

        try
        {
            // A: undisturbed.
            await Scenario("A", (_, disturbances) => { disturbances.Add("none"); return Task.CompletedTask; });

            // B: the trainer killed while training round 1 (its shard is stored, no checkpoint yet), the evaluator while
            // evaluating round 2 (checkpoint stored, no metrics yet). Each is SIGKILLed the moment the state is seen.
            await Scenario("B", async (b, disturbances) =>
            {
                var seen = await host.WaitForAsync(b, r => Rounds(r).Count >= 2 && Rounds(r)[1]["shardBlob"] is not null, RunTimeout, "round 1 generated");
                var state = Rounds(seen)[1]["checkpointFolder"] is null ? "while training round 1" : "after round 1 was trained (missed the window)";
                disturbances.Add($"trainer {await host.KillAndStartAsync(ServiceNames.Trainer)} {state}");
                seen = await host.WaitForAsync(b, r => Rounds(r).Count >= 3 && Rounds(r)[2]["checkpointFolder"] is not null, RunTimeout, "round 2 trained");
                state = Rounds(seen)[2]["accuracy"] is null ? "while evaluating round 2" : "after round 2 was evaluated (missed the window)";
                disturbances.Add($"evaluator {await host.KillAndStartAsync(ServiceNames.Evaluator)} {state}");
            });

            // C: RabbitMQ restarted during round 0, Azurite (data on disk) during round 1.
            await Scenario("C", async (c, disturbances) =>
            {
                await host.WaitForAsync(c, r => Rounds(r).Count >= 1, TimeSpan.FromMinutes(1), "round 0 dispatched");
                await Task.Delay(TimeSpan.FromSeconds(2));
                disturbances.Add($"rabbit {await host.RestartAsync(ServiceNames.Rabbit)} during round 0");
                await host.WaitForAsync(c, r => Rounds(r).Count >= 2, RunTimeout, "round 1 started");
                disturbances.Add($"azurite {await host.RestartAsync(ServiceNames.Blobs)} during round 1");
            });
        }
        finally
        {
            Results.Write("Point 1: service and infrastructure faults during a run", report.Append("").Concat(failures.Select(f => "- FAILED: " + f)));
        }

        // Point 5 on the same gateway, serving run C's (or the latest completed run's) model.
        await LoadAsync(host, failures);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// Point 2: a run against a teacher that answers 429 (Retry-After), 500, hangs, cut-off JSON and noisy labels. The
    /// run finishes (or fails with a reason) within the timeout, the retries are logged by the generator with their
    /// reason, rejected samples are counted per reason in the run status, and stored shards stay clean.
    /// </summary>
    [Fact]
    public async Task A_faulty_teacher_is_retried_and_its_bad_samples_are_rejected_and_counted()
    {
        string[] faults =
        [
            "--teacher-faults:TooManyRequestsRate=0.25", "--teacher-faults:RetryAfterMs=700", "--teacher-faults:ServerErrorRate=0.15",
            "--teacher-faults:MalformedReplyRate=0.2", "--teacher-faults:HangRate=0.1", "--teacher-faults:HangMs=3000",
            "--teacher-faults:LabelNoiseRate=0.2", "--teacher-faults:UnknownLabelRate=0.1",
        ];
        await using var host = await ReliabilityHost.StartAsync(faults);
        var generatorLog = new List<string>();
        using var stopLogs = new CancellationTokenSource();
        var logger = host.App.Services.GetRequiredService<ResourceLoggerService>();
        var collecting = Task.Run(async () =>
        {
            try
            {
                var generator = host.App.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == ServiceNames.Generator);
                await foreach (var batch in logger.WatchAsync(generator).WithCancellation(stopLogs.Token))
                    lock (generatorLog) generatorLog.AddRange(batch.Select(l => l.Content));
            }
            catch (OperationCanceledException) { }
        });

        var watch = Stopwatch.StartNew();
        // More teacher calls than the demo run makes: 3 rounds of 64 samples, asked for in several requests.
        var id = await host.StartRunAsync(maxRounds: 3, samplesPerRound: 64);
        var run = await host.WaitForEndAsync(id, RunTimeout);
        watch.Stop();
        await Task.Delay(2000);
        await stopLogs.CancelAsync();
        await collecting;

        // What the emulator says it injected (GET /emulator/stats), and that the AppHost forwarded the faults.
        host.App.ResourceNotifications.TryGetCurrentState(ServiceNames.TeacherEmulator, out var emulatorState);
        var forwarded = emulatorState?.Snapshot.EnvironmentVariables.Where(e => e.Name.StartsWith("Emulator__Faults__", StringComparison.Ordinal))
            .Select(e => $"{e.Name}={e.Value}").ToList() ?? [];
        string stats;
        using (var emulator = host.App.CreateHttpClient(ServiceNames.TeacherEmulator))
        using (var statsResponse = await emulator.GetAsync("/emulator/stats"))
            stats = $"{(int)statsResponse.StatusCode} {await statsResponse.Content.ReadAsStringAsync()}";

        var status = (string)run["status"]!;
        var rejected = Rounds(run).SelectMany(r => r["rejectedByReason"]?.AsObject() ?? [])
            .GroupBy(p => p.Key).ToDictionary(g => g.Key, g => g.Sum(p => (int)p.Value!));
        // The run status's own counts (GET /v1/runs/{id}): run totals and per round.
        var statusRetries = (run["teacherRetriesByCause"]?.AsObject() ?? []).ToDictionary(p => p.Key, p => (int)p.Value!);
        var perRound = Rounds(run).Skip(1).Select(r =>
            $"round {(int)r["round"]!}: {(int?)r["teacherCalls"] ?? 0} requests, retried " +
            $"{{{string.Join(", ", (r["teacherRetriesByCause"]?.AsObject() ?? []).Select(p => $"{p.Key}: {(int)p.Value!}"))}}}, " +
            $"repaired {(int?)r["repairedReplies"] ?? 0}, unusable {(int?)r["unusableReplies"] ?? 0}").ToList();
        string[] retryLines;
        lock (generatorLog) retryLines = generatorLog.Where(l => l.Contains("retrying in", StringComparison.Ordinal)).ToArray();
        var retryReasons = retryLines.Select(l => Regex.Match(l, @"failed \(([^)]*)\)").Groups[1].Value)
            .GroupBy(r => Regex.Replace(r, @"\d{4,}", "N")).ToDictionary(g => g.Key, g => g.Count());

        var failures = new List<string>();
        var check = new List<string>();
        if (status == "Completed")
            await CheckShardsAsync(host, id, run, check);
        else if (status != "Failed" || string.IsNullOrWhiteSpace((string?)run["failureReason"]))
            failures.Add($"run ended {status} without a reason: {run.ToJsonString()}");
        failures.AddRange(check);
        if (forwarded.Count != faults.Length) failures.Add($"the emulator got {forwarded.Count} of {faults.Length} faults: {string.Join(", ", forwarded)}");
        if (retryLines.Length == 0) failures.Add("no retry was logged although the teacher failed requests on purpose");
        // Asked in json_schema (the default when the teacher takes it), the label enum keeps every label inside the set,
        // and the emulator's unknown-label fault becomes a wrong label of the set; asked in json_object, labels outside
        // the set arrive and are rejected and counted by reason in the run status.
        var modes = Rounds(run).Select(r => (string?)r["responseMode"]).OfType<string>().Distinct().ToList();
        if (status == "Completed" && modes is ["json_schema"] && rejected.GetValueOrDefault("UnknownLabel") != 0)
            failures.Add($"asked in json_schema, yet {rejected["UnknownLabel"]} samples came with labels outside the set");
        if (status == "Completed" && !modes.Contains("json_schema") && rejected.GetValueOrDefault("UnknownLabel") == 0)
            failures.Add($"no sample was rejected as UnknownLabel although the teacher sent some: {string.Join(", ", rejected.Select(p => $"{p.Key}={p.Value}"))}");
        // The start-up check's retries are logged but belong to no run, so the status may count fewer than the log.
        if (statusRetries.Values.Sum() == 0 || statusRetries.Values.Sum() > retryLines.Length)
            failures.Add($"the run status counts {statusRetries.Values.Sum()} retries, the generator logged {retryLines.Length}");

        Results.Write("Point 2: a faulty teacher (emulator faults)",
        [
            $"- faults: `{string.Join(' ', faults)}`",
            $"- forwarded to the emulator: {string.Join(", ", forwarded)}",
            $"- emulator counters (GET /emulator/stats): `{stats}`",
            $"- run {id}: **{status}** in {watch.Elapsed.TotalSeconds:F0} s; failure reason: {(string?)run["failureReason"] ?? "none"}",
            $"- accepted per round: {string.Join(", ", Rounds(run).Select(r => $"{(int)r["round"]!}: {(int?)r["accepted"] ?? 0}/{(int?)r["requested"] ?? 0}"))}",
            $"- response mode (rounds[].responseMode): {string.Join(", ", modes)}",
            $"- rejected samples by reason (run status, rounds[].rejectedByReason): {(rejected.Count == 0 ? "none" : string.Join(", ", rejected.Select(p => $"{p.Key} {p.Value}")))}",
            $"- teacher attempts retried (generator log, \"Teacher attempt N failed (reason); retrying\"): {retryLines.Length}: {string.Join(", ", retryReasons.Select(p => $"{p.Key} ×{p.Value}"))}",
            $"- run status (GET /v1/runs/{{id}}): teacherRetriesByCause {{{string.Join(", ", statusRetries.Select(p => $"{p.Key}: {p.Value}"))}}}, " +
            $"repairedReplies {(int?)run["repairedReplies"] ?? 0}, unusableReplies {(int?)run["unusableReplies"] ?? 0}, " +
            $"rejectedByReason {{{string.Join(", ", (run["rejectedByReason"]?.AsObject() ?? []).Select(p => $"{p.Key}: {(int)p.Value!}"))}}}; {string.Join("; ", perRound)}",
            $"- stored shards: {(check.Count == 0 && status == "Completed" ? "accepted counts match, no duplicate, no held-out text" : string.Join("; ", check))}",
            .. failures.Select(f => "- FAILED: " + f),
        ]);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>
    /// Point 2, the other ending: the teacher goes away for good (its process SIGKILLed during round 0, not started
    /// again). The run must not hang: with the generator's default settings (Teacher:MaxRetries 5, RequestTimeout 2 min,
    /// MaxWaitWithoutReply 5 min) round 1 fails once the teacher's retries run out or it gave no reply for 5 minutes,
    /// the bus does not redeliver that failure, and the run is Failed with a reason that names the step, the round and
    /// the teacher. Nothing is stored for the round the teacher could not serve.
    /// </summary>
    [Fact]
    public async Task A_teacher_that_stays_down_fails_the_run_with_a_reason_instead_of_hanging()
    {
        await using var host = await ReliabilityHost.StartAsync();
        var watch = Stopwatch.StartNew();
        var id = await host.StartRunAsync();
        var pid = host.ProcessIdOf(ServiceNames.TeacherEmulator);
        Process.GetProcessById(pid).Kill(entireProcessTree: true);
        var killedAt = watch.Elapsed;
        var failures = new List<string>();
        JsonObject? run = null;
        try
        {
            run = await host.WaitForEndAsync(id, RunTimeout);
        }
        catch (TimeoutException e)
        {
            failures.Add($"the run did not end within {RunTimeout.TotalMinutes} min: {Shorten(e.Message)}");
        }
        watch.Stop();
        var status = (string?)run?["status"];
        var reason = (string?)run?["failureReason"] ?? "";
        if (run is not null && status != "Failed") failures.Add($"run ended {status}, expected Failed");
        if (run is not null && string.IsNullOrWhiteSpace(reason)) failures.Add("no failure reason");
        if (run is not null && !(reason.Contains("generating round 1 failed", StringComparison.Ordinal) && reason.Contains("the teacher at", StringComparison.Ordinal)))
            failures.Add("the failure reason does not name the step, the round and the teacher");
        // 5 min without a reply (the worst case: every attempt hangs until its timeout) plus round 0 and some slack.
        if (run is not null && watch.Elapsed > TimeSpan.FromMinutes(6.5)) failures.Add($"the run took {watch.Elapsed.TotalSeconds:F0} s to fail");
        var names = await host.BlobNamesAsync(id);
        if (names.Contains("data/round-1.jsonl")) failures.Add("a shard was stored for round 1 although the teacher was down");

        Results.Write("Point 2: the teacher stays down",
        [
            $"- teacher emulator SIGKILLed {killedAt.TotalSeconds:F1} s after the run started (round 0), not started again",
            $"- run {id}: **{status ?? "still running"}** after {watch.Elapsed.TotalSeconds:F0} s ({(watch.Elapsed - killedAt).TotalSeconds:F0} s after the kill)",
            $"- failure reason: `{Shorten(reason)}`",
            $"- round-1 shard stored: {(names.Contains("data/round-1.jsonl") ? "yes" : "no")}",
            .. failures.Select(f => "- FAILED: " + f),
        ]);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string Shorten(string text)
    {
        text = text.ReplaceLineEndings(" ").Replace("|", "/");
        return text.Length <= 400 ? text : text[..400] + "…";
    }

    private static List<JsonNode> Rounds(JsonObject run) => run["rounds"]?.AsArray().Select(r => r!).ToList() ?? [];

    private sealed record Baseline(double Accuracy, double Loss);

    private static async Task<Baseline?> CheckRunAsync(ReliabilityHost host, Guid id, JsonObject run, string name, string disturbance,
        List<string> report, List<string> failures, Baseline? baseline)
    {
        var status = (string)run["status"]!;
        var rounds = Rounds(run);
        var problems = new List<string>();
        if (status != "Completed") problems.Add($"status {status}: {(string?)run["failureReason"]}");
        if (rounds.Count != 3) problems.Add($"{rounds.Count} rounds, expected 3");
        else await CheckShardsAsync(host, id, run, problems);

        Baseline? own = rounds.Count > 0 && rounds[0]["accuracy"] is not null
            ? new Baseline((double)rounds[0]["accuracy"]!, (double)rounds[0]["validationLoss"]!)
            : null;
        if (baseline is not null && own is not null && (Math.Abs(own.Accuracy - baseline.Accuracy) > 1e-9 || Math.Abs(own.Loss - baseline.Loss) > 1e-6))
            problems.Add($"round 0 differs from run A: {own} vs {baseline}");

        report.Add($"| {name} `{id.ToString()[..8]}` | {disturbance} | {status} | {rounds.Count} | " +
                   $"{string.Join(", ", rounds.Skip(1).Select(r => $"{(int?)r["accepted"] ?? 0}/{(int?)r["requested"] ?? 0}"))} | " +
                   $"{own?.Accuracy.ToString("F4", CultureInfo.InvariantCulture)} / {own?.Loss.ToString("F5", CultureInfo.InvariantCulture)} | " +
                   $"{(int?)run["bestRound"]} | {((double?)run["testReport"]?["accuracy"])?.ToString("F4", CultureInfo.InvariantCulture)} | " +
                   $"{(problems.Count == 0 ? "ok" : string.Join("; ", problems))} |");
        failures.AddRange(problems.Select(p => $"run {name}: {p}"));
        return own;
    }

    /// <summary>Every round's shard holds exactly its accepted count; no text twice across seed and shards; none held out.</summary>
    private static async Task CheckShardsAsync(ReliabilityHost host, Guid id, JsonObject run, List<string> problems)
    {
        static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.Trim().ToLowerInvariant())));
        var heldOut = (await host.ReadDatasetAsync(id, "data/seed-val.jsonl")).Concat(await host.ReadDatasetAsync(id, "data/test.jsonl"))
            .Select(x => Hash(x.Text)).ToHashSet();
        var seen = (await host.ReadDatasetAsync(id, "data/seed-train.jsonl")).Select(x => Hash(x.Text)).ToHashSet();
        var names = await host.BlobNamesAsync(id);
        foreach (var round in Rounds(run).Skip(1))
        {
            var r = (int)round["round"]!;
            var shard = $"data/round-{r}.jsonl";
            if (!names.Contains(shard)) { problems.Add($"round {r}: no shard {shard}"); continue; }
            var samples = await host.ReadDatasetAsync(id, shard);
            if (samples.Count != (int)round["accepted"]!) problems.Add($"round {r}: shard has {samples.Count} samples, status says {(int)round["accepted"]!} accepted");
            foreach (var sample in samples)
            {
                var hash = Hash(sample.Text);
                if (heldOut.Contains(hash)) problems.Add($"round {r}: held-out text in the shard: {sample.Text}");
                if (!seen.Add(hash)) problems.Add($"round {r}: duplicate text: {sample.Text}");
            }
        }
        for (var r = 0; r < Rounds(run).Count; r++)
            if (!names.Contains($"checkpoints/round-{r}/training.json")) problems.Add($"round {r}: no complete checkpoint");
    }

    /// <summary>Point 5: wrk, 60 s, 32 connections, against /v1/classify; 0 errors; throughput, p50/p99; gateway RSS before and after.</summary>
    private static async Task LoadAsync(ReliabilityHost host, List<string> failures)
    {
        var wrk = new[] { "/usr/bin/wrk", "/usr/local/bin/wrk" }.FirstOrDefault(File.Exists);
        if (wrk is null)
        {
            failures.Add("wrk is not installed (./build.sh reliability installs it with apt)");
            Results.Write("Point 5: load", ["- NOT RUN: wrk missing"]);
            return;
        }
        var url = new Uri(host.Gateway.BaseAddress!, "/v1/classify").ToString();
        var script = Path.Combine(host.Arguments.DataDirectory, "classify.lua");
        await File.WriteAllTextAsync(script, $$"""
            wrk.method = "POST"
            wrk.body = '{"text":"The striker scored twice in the cup final as the home side won the league"}'
            wrk.headers["Content-Type"] = "application/json"
            wrk.headers["X-Api-Key"] = "{{ReliabilityHost.ApiKey}}"
            """);
        var pid = host.ProcessIdOf(ServiceNames.Gateway);
        await RunWrkAsync(wrk, script, url, 5); // warm-up: JIT, ORT session, thread pool
        var before = ReliabilityHost.RssKiB(pid);
        var output = await RunWrkAsync(wrk, script, url, 60);
        await Task.Delay(2000);
        var after = ReliabilityHost.RssKiB(pid);
        using (var health = await host.Gateway.GetAsync("/health"))
            if (!health.IsSuccessStatusCode) failures.Add($"gateway /health {(int)health.StatusCode} after the load");

        string Find(string pattern) => Regex.Match(output, pattern, RegexOptions.Multiline) is { Success: true } m ? m.Groups[1].Value : "?";
        var non2xx = Find(@"Non-2xx or 3xx responses:\s*(\d+)");
        var socket = Find(@"Socket errors:\s*(.*)$");
        var requests = Find(@"^\s*(\d+) requests in");
        var errors = (non2xx == "?" ? 0 : long.Parse(non2xx)) + Regex.Matches(socket, @"\d+").Sum(m => long.Parse(m.Value));
        if (errors > 0) failures.Add($"load: {errors} errors (non-2xx {non2xx}; socket {socket})");
        if (after > before * 1.5 + 100_000) failures.Add($"load: gateway RSS grew from {before} KiB to {after} KiB");

        Results.Write("Point 5: load on /v1/classify (wrk, 60 s, 32 connections, 2 threads, loopback)",
        [
            $"- requests: {requests}; throughput {Find(@"Requests/sec:\s*([\d.]+)")} req/s",
            $"- latency p50 {Find(@"^\s*50%\s+(\S+)")}, p90 {Find(@"^\s*90%\s+(\S+)")}, p99 {Find(@"^\s*99%\s+(\S+)")}, max {Find(@"Latency\s+\S+\s+\S+\s+(\S+)")}",
            $"- errors: non-2xx {(non2xx == "?" ? "0" : non2xx)}; socket errors {(socket == "?" ? "none" : socket)}",
            $"- gateway RSS: {before / 1024} MiB before, {after / 1024} MiB after",
            "",
            "```",
            output.Trim(),
            "```",
        ]);
    }

    private static async Task<string> RunWrkAsync(string wrk, string script, string url, int seconds)
    {
        var info = new ProcessStartInfo(wrk, ["-t2", "-c32", $"-d{seconds}s", "--latency", "--timeout", "30s", "-s", script, url])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds + 60));
        await process.WaitForExitAsync(cts.Token);
        return await stdout + await stderr;
    }
}
