using System.Text.Json.Nodes;
using Pgkd.Benchmarks.Live;

namespace PgkdAspire.FunctionalTests;

/// <summary>
/// What a user reads on the dashboard after the shared run: its round traces carry no error span (a write-once check's
/// 404 or 409 is an answer, not a failure), and health probes, which every service answers every few seconds, leave no
/// spans at all.
/// </summary>
[Collection(DistillationCollection.Name)]
public sealed class TelemetryTests(DistillationRunFixture run)
{
    [Fact]
    public async Task A_clean_run_has_no_error_span_and_health_probes_leave_no_spans()
    {
        Assert.True((string?)run.Run["status"] == "Completed", run.Run.ToJsonString());
        using var dashboard = run.DashboardApi();

        IReadOnlyList<DashboardSpan> spans = [];
        HashSet<string> runTraces = [];
        for (var attempt = 0; attempt < 30; attempt++)
        {
            spans = DashboardSpan.Parse(JsonNode.Parse(await dashboard.GetStringAsync("/api/telemetry/spans?limit=100000"))!.AsObject());
            runTraces = spans.Where(s => s.Attribute("pgkd.run_id") == run.RunId.ToString()).Select(s => s.TraceId).ToHashSet();
            var roundTraces = spans.Count(s => s.IsRoundOf(run.RunId.ToString()));
            if (roundTraces == 3 && spans.Any(s => runTraces.Contains(s.TraceId) && s.Name == "pgkd.evaluate")) break;
            await Task.Delay(1000);
        }

        var inRun = spans.Where(s => runTraces.Contains(s.TraceId)).ToList();
        // Positive controls: the run's traces hold blob calls, among them the checks whose 404 used to show red.
        Assert.True(inRun.Count > 50, $"only {inRun.Count} spans in the run's {runTraces.Count} traces");
        Assert.Contains(inRun, s => s.Name.EndsWith(".Exists", StringComparison.Ordinal));
        Assert.Contains(inRun, s => s.Name == "run-store.write-once");

        var errors = inRun.Where(s => s.IsError).ToList();
        Assert.True(errors.Count == 0, "error spans in a clean run:\n" + string.Join("\n", errors.Select(Describe)));

        // Probes: the AppHost asks every service's /health every few seconds; the blob check lists containers.
        var probes = spans.Where(s => s.Name.Contains("GetBlobContainers", StringComparison.Ordinal)
                                      || s.Attribute("url.path") is "/health" or "/alive"
                                      || s.Attribute("http.target") is "/health" or "/alive").ToList();
        Assert.True(probes.Count == 0, "health-check spans:\n" + string.Join("\n", probes.Take(20).Select(Describe)));
    }

    private static string Describe(DashboardSpan s) =>
        $"{s.Service} {s.Name} (trace {s.TraceId}) {s.StatusMessage} " +
        string.Join(", ", s.Attributes.Where(a => a.Key.StartsWith("http", StringComparison.Ordinal) || a.Key.StartsWith("error", StringComparison.Ordinal)
                                                  || a.Key.StartsWith("url", StringComparison.Ordinal)).Select(a => $"{a.Key}={a.Value}"));
}
