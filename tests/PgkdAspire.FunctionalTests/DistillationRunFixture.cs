using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Pgkd.Contracts;

namespace PgkdAspire.FunctionalTests;

/// <summary>
/// One real AppHost (its own RabbitMQ, Azurite and dashboard on free ports) and one finished 2-round distillation
/// run on the project's demo dataset, shared by every test in the "distillation" collection: the run takes a
/// minute or two on 2 cores, so it happens once.
/// </summary>
public sealed class DistillationRunFixture : IAsyncLifetime
{
    public const string ApiKey = "pgkd-local-dev-key";
    public static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(8);

    public TestAppHostArguments Arguments { get; } = TestAppHostArguments.Create();
    public DistributedApplication App { get; private set; } = null!;
    public HttpClient Gateway { get; private set; } = null!;
    public Uri DashboardUrl { get; private set; } = null!;

    /// <summary>The dashboard's browser token: what the AppHost's "Login to the dashboard at ..." link carries.</summary>
    public string DashboardBrowserToken { get; private set; } = "";

    /// <summary>The key of the dashboard's telemetry API (header <c>x-api-key</c>).</summary>
    public string DashboardApiKey { get; } = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));

    /// <summary>The login link a user opens once (the console prints it): the dashboard sets its cookie and shows the resources.</summary>
    public Uri DashboardLoginUrl => new(DashboardUrl, $"/login?t={DashboardBrowserToken}");

    /// <summary>A client of the dashboard's telemetry API (<c>/api/telemetry/...</c>) with its key.</summary>
    public HttpClient DashboardApi()
    {
        var client = new HttpClient { BaseAddress = DashboardUrl, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Add("x-api-key", DashboardApiKey);
        return client;
    }
    public Guid RunId { get; private set; }

    /// <summary>The run's manifest (GET /v1/runs/{id}) once it finished.</summary>
    public JsonObject Run { get; private set; } = null!;


    public async Task InitializeAsync()
    {
        // The dashboard as a user gets it: sign-in with the browser token, the telemetry API behind a key (one the tests
        // know: the AppHost takes it from its configuration instead of generating it).
        var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(
            [.. Arguments.ToArgs(), $"--AppHost:DashboardApiKey={DashboardApiKey}"],
            (options, _) => options.DisableDashboard = false);
        App = await appHost.BuildAsync();
        await App.StartAsync();
        await AppHostResources.WaitForAllHealthyAsync(App.ResourceNotifications.WaitForResourceHealthyAsync, TimeSpan.FromMinutes(3));
        await App.ResourceNotifications.WaitForResourceAsync("aspire-dashboard", KnownResourceStates.Running);
        App.ResourceNotifications.TryGetCurrentState("aspire-dashboard", out var dashboard);
        // The dashboard resource lists its frontend ("http") beside its OTLP endpoints.
        DashboardUrl = new Uri(dashboard!.Snapshot.Urls.First(u => u.Name == "http").Url);
        // The token the AppHost generated and handed the dashboard (the one its login link prints).
        DashboardBrowserToken = dashboard.Snapshot.EnvironmentVariables.FirstOrDefault(e => e.Name == "DASHBOARD__FRONTEND__BROWSERTOKEN")?.Value
                                ?? throw new InvalidOperationException("the dashboard resource has no DASHBOARD__FRONTEND__BROWSERTOKEN: is its sign-in off?");

        Gateway = App.CreateHttpClient(ServiceNames.Gateway);
        Gateway.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        Gateway.Timeout = TimeSpan.FromMinutes(2);

        var request = await DemoRun.RequestAsync();
        // The trainer's stopping within a round, end to end: it reads the run's feedback part from blob storage, stops each
        // round on its loss and records the epoch it kept (training.json).
        request["student"] = new JsonObject { ["mode"] = "head", ["validationPatience"] = 3, ["maxEpochs"] = 30 };
        using var created = await Gateway.PostAsJsonAsync("/v1/runs", request);
        var body = await created.Content.ReadAsStringAsync();
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"POST /v1/runs answered {(int)created.StatusCode}: {body}");
        RunId = JsonDocument.Parse(body).RootElement.GetProperty("runId").GetGuid();

        var deadline = DateTime.UtcNow + RunTimeout;
        while (true)
        {
            Run = (await Gateway.GetFromJsonAsync<JsonObject>($"/v1/runs/{RunId}"))!;
            var status = (string?)Run["status"];
            if (status is "Completed" or "Failed" or "Cancelled") break;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"run {RunId} still {status} after {RunTimeout}: {Run.ToJsonString()}");
            await Task.Delay(1000);
        }
    }

    public async Task DisposeAsync()
    {
        Gateway?.Dispose();
        if (App is not null)
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
        if (Directory.Exists(Arguments.DataDirectory)) Directory.Delete(Arguments.DataDirectory, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class DistillationCollection : ICollectionFixture<DistillationRunFixture>
{
    public const string Name = "distillation";
}
