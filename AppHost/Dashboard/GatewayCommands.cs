using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;

namespace PgkdAspire.AppHost.Dashboard;

/// <summary>
/// The dashboard tells the story: the gateway resource's commands start a demo run and give the latest run's report,
/// and its URLs include the run reports. Commands run in the AppHost and call the gateway's own API with its key, the
/// way a user would; the dashboard cannot open a browser, so a command answers with a Markdown link it shows at once.
/// </summary>
public static class GatewayCommands
{
    public const string StartDemoRun = "pgkd-start-demo-run";
    public const string OpenLatestReport = "pgkd-open-latest-report";

    /// <summary>The demo run of <c>scripts/demo.sh</c>: the project's demo dataset and its pool, 3 rounds of 24 samples, head mode.</summary>
    public static async Task<JsonObject> DemoRunRequestAsync(string repositoryRoot, CancellationToken cancellationToken)
    {
        var data = Path.Combine(repositoryRoot, "src", "Pgkd.TeacherEmulator", "DemoData");
        string Read(string file) => Path.Combine(data, file);
        return new JsonObject
        {
            // labels.txt: one label a line, optionally "name<TAB>description".
            ["labels"] = new JsonArray((await File.ReadAllLinesAsync(Read("labels.txt"), cancellationToken)).Where(l => l.Trim().Length > 0)
                .Select(l => l.Split('\t', 2))
                .Select(p => (JsonNode)new JsonObject { ["name"] = p[0].Trim(), ["description"] = p.Length > 1 ? p[1].Trim() : null })
                .ToArray()),
            ["train"] = await File.ReadAllTextAsync(Read("seed_train.jsonl"), cancellationToken),
            ["validation"] = await File.ReadAllTextAsync(Read("seed_val.jsonl"), cancellationToken),
            ["test"] = File.Exists(Read("test.jsonl")) ? await File.ReadAllTextAsync(Read("test.jsonl"), cancellationToken) : null,
            // The demo's own pool: the emulator's default pool knows none of its labels.
            ["pool"] = await File.ReadAllTextAsync(Read("pool.jsonl"), cancellationToken),
            ["task"] = "Classify customer messages to an online shop's support desk by what the customer wants.",
            ["configuration"] = new JsonObject { ["maxRounds"] = 3, ["samplesPerRound"] = 24 },
            ["student"] = new JsonObject { ["mode"] = "head" },
        };
    }

    public static IResourceBuilder<ProjectResource> WithPgkdCommands(this IResourceBuilder<ProjectResource> gateway,
        IResourceBuilder<ParameterResource> apiKey, string repositoryRoot)
    {
        var http = gateway.GetEndpoint("http");
        // Enabled once the gateway answers its health check: before that a command could only fail.
        static ResourceCommandState WhenHealthy(UpdateCommandStateContext c) =>
            c.ResourceSnapshot.HealthStatus == HealthStatus.Healthy ? ResourceCommandState.Enabled : ResourceCommandState.Disabled;

        async Task<HttpClient> ClientAsync(CancellationToken cancellationToken)
        {
            var client = new HttpClient { BaseAddress = new Uri(http.Url), Timeout = TimeSpan.FromSeconds(60) };
            client.DefaultRequestHeaders.Add("X-Api-Key", await apiKey.Resource.GetValueAsync(cancellationToken));
            return client;
        }

        gateway.WithUrls(context =>
        {
            if (context.GetEndpoint("http") is { IsAllocated: true } endpoint)
                context.Urls.Add(new ResourceUrlAnnotation { Url = $"{endpoint.Url}/runs", DisplayText = "Run reports (key: pgkd-local-dev-key)" });
        });

        gateway.WithCommand(StartDemoRun, "Start a demo run", async context =>
        {
            using var client = await ClientAsync(context.CancellationToken);
            var request = await DemoRunRequestAsync(repositoryRoot, context.CancellationToken);
            using var response = await client.PostAsJsonAsync("/v1/runs", request, context.CancellationToken);
            var body = await response.Content.ReadAsStringAsync(context.CancellationToken);
            if (!response.IsSuccessStatusCode)
                return CommandResults.Failure($"The gateway refused the demo run (HTTP {(int)response.StatusCode})", body, CommandResultFormat.Json);
            var runId = (string?)JsonNode.Parse(body)?["runId"];
            var report = $"{http.Url}/runs/{runId}";
            context.Logger.LogInformation("Demo run {RunId} started: {Report}", runId, report);
            return CommandResults.Success($"Demo run {runId} started",
                $"Demo run **{runId}** started: 3 rounds of 24 teacher samples on the demo dataset.\n\n" +
                $"- [Open its report]({report}) (sign in with the gateway key, locally `pgkd-local-dev-key`)\n" +
                $"- Traces: filter by `{runId}` or `pgkd round`; metrics: meter `PgkdAspire`, tags `pgkd.run_id` and `pgkd.round`.",
                CommandResultFormat.Markdown, displayImmediately: true);
        }, new CommandOptions
        {
            // The dashboard's button is labelled with the description: it starts with the command's name.
            Description = "Start a demo run: POST the demo dataset to /v1/runs, a 3-round distillation run with the emulator as teacher",
            IconName = "Play",
            IsHighlighted = true,
            UpdateState = WhenHealthy,
        });

        gateway.WithCommand(OpenLatestReport, "Open the latest report", async context =>
        {
            using var client = await ClientAsync(context.CancellationToken);
            var runs = await client.GetFromJsonAsync<JsonArray>("/v1/runs", context.CancellationToken);
            if (runs is not [{ } latest, ..])
                return CommandResults.Failure("No run yet: start one with \"Start a demo run\" or pgkd run");
            var runId = (string?)latest["runId"];
            var report = $"{http.Url}/runs/{runId}";
            var best = latest["bestAccuracy"] is { } accuracy ? $", best round {latest["bestRound"]} at {(double)accuracy:P1} validation accuracy" : "";
            return CommandResults.Success($"Latest run {runId}: {report}",
                $"Latest run **{runId}**: {latest["status"]}, {latest["roundsEvaluated"]} rounds evaluated{best}, " +
                $"teacher {((decimal?)latest["teacherCostUsd"] ?? 0).ToString("0.0000", CultureInfo.InvariantCulture)} USD.\n\n" +
                $"[Open the report]({report}) (sign in with the gateway key, locally `pgkd-local-dev-key`)",
                CommandResultFormat.Markdown, displayImmediately: true);
        }, new CommandOptions
        {
            Description = "Open the latest report: a link to the report page of the newest run (GET /v1/runs)",
            IconName = "DocumentBulletList",
            IsHighlighted = true,
            UpdateState = WhenHealthy,
        });
        return gateway;
    }
}
