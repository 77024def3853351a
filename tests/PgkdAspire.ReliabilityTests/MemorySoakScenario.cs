using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Pgkd.Contracts;
using Xunit;
using Xunit.Abstractions;

namespace PgkdAspire.ReliabilityTests;

/// <summary>
/// Issue 19.1: one AppHost, full-mode runs one after the other (20 by default; <c>PGKD_SOAK_RUNS</c> to change), every
/// service's resident memory after each run. The target: after the last run each service holds at most 1.25x what it held
/// after the first. Small runs (the demo data, 2 rounds, max length 64, one epoch a round): what grows is per job, not per
/// example, so small runs show it sooner.
/// </summary>
public sealed class MemorySoakScenario(ITestOutputHelper output)
{
    private static readonly string[] Services =
        [ServiceNames.Gateway, ServiceNames.Orchestrator, ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator, ServiceNames.TeacherEmulator];

    private static int Runs => int.TryParse(Environment.GetEnvironmentVariable("PGKD_SOAK_RUNS"), out var n) && n >= 2 ? n : 20;

    [Fact]
    public async Task Full_mode_runs_in_sequence_leave_every_service_within_1_25x_its_memory_after_the_first()
    {
        await using var host = await ReliabilityHost.StartAsync();
        var rows = new List<(int Run, double Seconds, Dictionary<string, long> RssKiB)>();
        for (var run = 1; run <= Runs; run++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var request = await DemoRun.RequestAsync(seed: 7, maxRounds: 2, samplesPerRound: 8);
            request["student"] = new JsonObject { ["mode"] = "full", ["epochsPerRound"] = 1, ["seedEpochs"] = 1, ["maxLength"] = 64 };
            using var created = await host.Gateway.PostAsJsonAsync("/v1/runs", request);
            created.EnsureSuccessStatusCode();
            var runId = (await created.Content.ReadFromJsonAsync<JsonObject>())!["runId"]!.GetValue<Guid>();
            var end = await host.WaitForEndAsync(runId, TimeSpan.FromMinutes(15));
            Assert.Equal("Completed", (string?)end["status"]);
            await Task.Delay(TimeSpan.FromSeconds(3)); // the last step's release after its reply
            var rss = Services.ToDictionary(s => s, s => ReliabilityHost.RssKiB(host.ProcessIdOf(s)));
            if (run == 1) CheckMeasuredProcesses(host);
            rows.Add((run, clock.Elapsed.TotalSeconds, rss));
            output.WriteLine($"run {run} ({clock.Elapsed.TotalSeconds:F0} s): " + string.Join(", ", rss.Select(p => $"{p.Key} {p.Value / 1024} MiB")));
            WriteResults(rows); // after every run: a soak cut short still leaves its curve
        }

        ReliabilityHost.AssertServedModelCopiesBounded(); // ~200 MiB a full-mode run: bounded by the gateway itself
        var first = rows[0].RssKiB;
        var last = rows[^1].RssKiB;
        var grown = Services.Where(s => last[s] > 1.25 * first[s]).Select(s => $"{s} {first[s] / 1024} -> {last[s] / 1024} MiB").ToList();
        Assert.True(grown.Count == 0, "RSS after the last run above 1.25x the first: " + string.Join("; ", grown));
    }

    /// <summary>
    /// The RSS read must be each service's own process, not the <c>dotnet run</c> launcher whose pid Aspire reports (a steady
    /// ~138 MiB whatever the service holds: earlier figures were the launcher's). A project's own process runs its apphost,
    /// named after the assembly (Pgkd.Orchestrator), where the launcher runs <c>dotnet</c>.
    /// </summary>
    private void CheckMeasuredProcesses(ReliabilityHost host)
    {
        var measured = Services.Select(s =>
        {
            var launcher = host.ProcessIdOf(s);
            var own = ReliabilityHost.ServiceProcessOf(launcher);
            var exe = Path.GetFileName(new FileInfo($"/proc/{own}/exe").LinkTarget ?? "?");
            return (Service: s, Launcher: launcher, Own: own, Exe: exe);
        }).ToList();
        var line = "measured processes: " + string.Join(", ", measured.Select(m => $"{m.Service} pid {m.Own} ({m.Exe}, under {m.Launcher})"));
        output.WriteLine(line);
        Results.Write("Memory soak, measured processes", [line]);
        var wrong = measured.Where(m => !m.Exe.StartsWith("Pgkd.", StringComparison.Ordinal)).ToList();
        Assert.True(wrong.Count == 0, "RSS would be read from a process that is not the service's own: " +
                                      string.Join("; ", wrong.Select(m => $"{m.Service}: pid {m.Own} runs {m.Exe}")));
    }

    private static void WriteResults(List<(int Run, double Seconds, Dictionary<string, long> RssKiB)> rows)
    {
        var lines = new List<string>
        {
            $"Full-mode runs in sequence through one AppHost (demo data, 2 rounds of 8 samples, max length 64), RSS in MiB after each run:",
            "",
            "| run | seconds | " + string.Join(" | ", Services) + " |",
            "|---|---|" + string.Concat(Services.Select(_ => "---|")),
        };
        lines.AddRange(rows.Select(r => $"| {r.Run} | {r.Seconds.ToString("F0", CultureInfo.InvariantCulture)} | " +
                                        string.Join(" | ", Services.Select(s => (r.RssKiB[s] / 1024).ToString(CultureInfo.InvariantCulture))) + " |"));
        if (rows.Count >= 2)
            lines.Add("\nlast / first: " + string.Join(", ", Services.Select(s =>
                $"{s} {((double)rows[^1].RssKiB[s] / rows[0].RssKiB[s]).ToString("F2", CultureInfo.InvariantCulture)}")));
        Results.Write($"Memory soak, run {rows.Count}", lines);
    }
}
