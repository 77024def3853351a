using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Azure.Storage.Blobs;
using Pgkd.Contracts;
using PgkdAspire.AppHost.LocalStack;

namespace Pgkd.Benchmarks.Live;

/// <summary>One distillation run the benchmark made through the gateway, finished.</summary>
public sealed record LiveRun(string Mode, Guid RunId, int Rounds, int SamplesPerRound, int? EpochsPerRound, JsonObject Manifest, TimeSpan Elapsed)
{
    public int BestRound => (int)Manifest["bestRound"]!;
}

/// <summary>
/// The real system for the speed and anatomy sections: the AppHost started in this process with
/// <see cref="DistributedApplicationTestingBuilder"/> (its own RabbitMQ, Azurite and dashboard on free ports, as the
/// functional tests do, so it runs beside a developer's <c>./build.sh run</c>), and the distillation runs both sections
/// read (one per student mode, on the dataset's seed files). Started once per benchmark process; the last of the two
/// sections to run stops it (<see cref="ReleaseAsync"/>), and a process exit stops it too.
/// </summary>
public sealed class LiveSystem : IAsyncDisposable
{
    public const string ApiKey = "pgkd-local-dev-key";
    public static readonly string[] Users = ["speed", "anatomy"];
    private static LiveSystem? _current;
    private static IReadOnlyList<LiveRun>? _runs;

    private DistributedApplication _app = null!;
    private string _dataDirectory = null!;

    public HttpClient Gateway { get; private set; } = null!;
    public Uri GatewayUrl { get; private set; } = null!;
    /// <summary>The gateway's own Kestrel address behind the Aspire proxy, when the resource reveals it.</summary>
    public Uri? GatewayDirectUrl { get; private set; }
    public HttpClient Dashboard { get; private set; } = null!;
    public BlobContainerClient RunsContainer { get; private set; } = null!;
    public bool RealTeacher { get; private set; }
    public TimeSpan StartTime { get; private set; }

    /// <summary>The running system, started on first use.</summary>
    public static async Task<LiveSystem> AcquireAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        if (_current is not null) return _current;
        var system = new LiveSystem();
        try
        {
            await system.StartAsync(options, cancellationToken);
        }
        catch
        {
            await system.DisposeAsync();
            throw;
        }
        _current = system;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { _current?.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(60)); } catch { /* exiting anyway */ } };
        return system;
    }

    /// <summary>Stops the system when <paramref name="section"/> is the last section of this invocation that uses it, or when asked to.</summary>
    public static async Task ReleaseAsync(BenchmarkOptions options, string section, bool force = false)
    {
        var users = options.Sections.Where(Users.Contains).ToList();
        if (!force && users.Count > 0 && users[^1] != section) return;
        var system = _current;
        _current = null;
        _runs = null;
        if (system is not null) await system.DisposeAsync();
    }

    /// <summary>
    /// The runs both sections read: one per student mode of <see cref="BenchmarkOptions.Modes"/>, each
    /// min(rounds, 2) rounds of <see cref="BenchmarkOptions.SamplesPerRound"/> samples on the seed train/validation
    /// files (no test set: the last round's trace then ends with its validation). Made once.
    /// </summary>
    public async Task<IReadOnlyList<LiveRun>> RunsAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        if (_runs is not null) return _runs;
        RunsLoad = (MachineInfo.LoadAverage(), "?");
        var runs = new List<LiveRun>();
        foreach (var mode in options.Modes)
            runs.Add(await RunAsync(options, mode, AnatomyRounds(options), options.SamplesPerRound, cancellationToken));
        RunsLoad = (RunsLoad.AtStart, MachineInfo.LoadAverage());
        return _runs = runs;
    }

    /// <summary>The load average when the runs started and when they finished (the anatomy's machine line).</summary>
    public (string AtStart, string AtEnd) RunsLoad { get; private set; } = ("?", "?");

    public static int AnatomyRounds(BenchmarkOptions options) => Math.Min(options.Rounds, options.AnatomyRounds);

    private async Task<LiveRun> RunAsync(BenchmarkOptions options, string mode, int rounds, int samples, CancellationToken cancellationToken)
    {
        int? epochs = mode == "full" ? options.FullEpochsPerRound : null;
        var labels = File.ReadAllLines(Path.Combine(options.DataDirectory, "labels.txt")).Where(l => l.Trim().Length > 0)
            .Select(l => l.Split('\t', 2))
            .Select(p => (JsonNode)new JsonObject { ["name"] = p[0].Trim(), ["description"] = p.Length > 1 ? p[1].Trim() : null })
            .ToArray();
        var student = new JsonObject { ["mode"] = mode };
        if (epochs is { } e) student["epochsPerRound"] = e;
        var request = new JsonObject
        {
            ["labels"] = new JsonArray(labels),
            ["train"] = await File.ReadAllTextAsync(Path.Combine(options.DataDirectory, "seed_train.jsonl"), cancellationToken),
            ["validation"] = await File.ReadAllTextAsync(Path.Combine(options.DataDirectory, "seed_val.jsonl"), cancellationToken),
            // patience above the round count: every round runs, so the anatomy covers them all.
            ["configuration"] = new JsonObject { ["maxRounds"] = rounds, ["samplesPerRound"] = samples, ["seed"] = 1, ["patience"] = rounds + 1 },
            ["student"] = student,
        };
        var clock = Stopwatch.StartNew();
        using var created = await Gateway.PostAsJsonAsync("/v1/runs", request, cancellationToken);
        var body = await created.Content.ReadAsStringAsync(cancellationToken);
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"POST /v1/runs answered {(int)created.StatusCode}: {body}");
        var runId = JsonDocument.Parse(body).RootElement.GetProperty("runId").GetGuid();
        Console.Error.WriteLine($"[bench] run {runId}: {mode} mode, {rounds} rounds x {samples} samples");
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(60);
        var lastRounds = -1;
        while (true)
        {
            var run = (await Gateway.GetFromJsonAsync<JsonObject>($"/v1/runs/{runId}", cancellationToken))!;
            var status = (string?)run["status"];
            var evaluated = run["rounds"]?.AsArray().Count(r => r?["accuracy"] is not null) ?? 0;
            if (evaluated != lastRounds) { Console.Error.WriteLine($"[bench] run {runId}: {evaluated} of {rounds + 1} rounds evaluated ({clock.Elapsed.TotalSeconds:F0} s)"); lastRounds = evaluated; }
            if (status == "Completed") return new LiveRun(mode, runId, rounds, samples, epochs, run, clock.Elapsed);
            if (status is "Failed" or "Cancelled") throw new InvalidOperationException($"run {runId} ended {status}: {run["failureReason"]}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId} still {status} after 60 minutes");
            await Task.Delay(1000, cancellationToken);
        }
    }

    private async Task StartAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        // The dashboard's telemetry API answers without a login only with anonymous access: this process only.
        Environment.SetEnvironmentVariable("ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS", "true");
        var instance = $"bench-{Guid.NewGuid():N}"[..16];
        _dataDirectory = Path.Combine(Path.GetTempPath(), "pgkd-" + instance);
        var ports = LocalStackOptions.FreeLoopbackPorts(5);
        var args = new List<string>
        {
            $"--instance={instance}", $"--data-dir={_dataDirectory}",
            $"--rabbit-port={ports[0]}", $"--rabbit-management-port={ports[1]}",
            $"--rabbit-dist-port={ports[2]}", $"--epmd-port={ports[3]}", $"--blob-port={ports[4]}",
            // The AppHost would echo every resource's log lines into this console: keep warnings and errors only.
            "--Logging:LogLevel:Default=Warning", "--Logging:LogLevel:PgkdAspire=Warning", "--Logging:LogLevel:System.Net.Http=Warning",
        };
        RealTeacher = !string.IsNullOrWhiteSpace(options.TeacherConnectionString);
        if (RealTeacher) args.Add($"--ConnectionStrings:teacher={options.TeacherConnectionString}");
        Console.Error.WriteLine($"[bench] starting the AppHost (instance {instance}, {(RealTeacher ? "the configured teacher" : "the teacher emulator")})");
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(args.ToArray(),
            (o, _) => o.DisableDashboard = false, cancellationToken);
        // Same thread count as the in-process measurements; the emulator answers from the dataset's pool.
        var threads = options.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture);
        foreach (var resource in builder.Resources.OfType<ProjectResource>())
        {
            var r = builder.CreateResourceBuilder(resource);
            switch (resource.Name)
            {
                case ServiceNames.Trainer: r.WithEnvironment("Trainer__Threads", threads); break;
                case ServiceNames.Evaluator: r.WithEnvironment("Evaluator__Threads", threads); break;
                case ServiceNames.Gateway: r.WithEnvironment("Gateway__Inference__Threads", threads); break;
                case ServiceNames.TeacherEmulator:
                    var pool = Path.Combine(options.DataDirectory, "pool.jsonl");
                    if (File.Exists(pool)) r.WithEnvironment("Emulator__PoolPath", pool);
                    break;
            }
        }
        _app = await builder.BuildAsync(cancellationToken);
        await _app.StartAsync(cancellationToken);
        using (var healthy = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            healthy.CancelAfter(TimeSpan.FromMinutes(4));
            var names = new List<string> { ServiceNames.Rabbit, ServiceNames.Blobs, ServiceNames.Orchestrator, ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator, ServiceNames.Gateway };
            if (!RealTeacher) names.Add(ServiceNames.TeacherEmulator);
            foreach (var name in names)
                await _app.ResourceNotifications.WaitForResourceHealthyAsync(name, healthy.Token);
            await _app.ResourceNotifications.WaitForResourceAsync("aspire-dashboard", KnownResourceStates.Running, healthy.Token);
        }
        _app.ResourceNotifications.TryGetCurrentState("aspire-dashboard", out var dashboard);
        Dashboard = new HttpClient { BaseAddress = new Uri(dashboard!.Snapshot.Urls.First(u => u.Name == "http").Url), Timeout = TimeSpan.FromSeconds(60) };

        Gateway = _app.CreateHttpClient(ServiceNames.Gateway);
        Gateway.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        Gateway.Timeout = TimeSpan.FromMinutes(2);
        GatewayUrl = Gateway.BaseAddress!;
        GatewayDirectUrl = DirectUrl(ServiceNames.Gateway);

        var blobs = await _app.GetConnectionStringAsync(ServiceNames.Blobs, cancellationToken)
                    ?? throw new InvalidOperationException("the AppHost gave no blobs connection string");
        RunsContainer = new BlobServiceClient(blobs).GetBlobContainerClient("runs");
        StartTime = clock.Elapsed;
        Console.Error.WriteLine($"[bench] AppHost up in {StartTime.TotalSeconds:F0} s; gateway {GatewayUrl} (direct {GatewayDirectUrl?.ToString() ?? "unknown"}), dashboard {Dashboard.BaseAddress}");
    }

    /// <summary>The address the service's Kestrel listens on (its ASPNETCORE_URLS / HTTP_PORTS), behind the proxy.</summary>
    private Uri? DirectUrl(string resource)
    {
        if (!_app.ResourceNotifications.TryGetCurrentState(resource, out var state)) return null;
        foreach (var variable in state.Snapshot.EnvironmentVariables)
        {
            if (variable.Name == "ASPNETCORE_URLS" && variable.Value is { } urls)
            {
                var first = urls.Split(';', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(u => u.StartsWith("http://", StringComparison.Ordinal));
                if (first is not null) return new Uri(first.Replace("+", "localhost", StringComparison.Ordinal).Replace("*", "localhost", StringComparison.Ordinal));
            }
            if (variable.Name == "HTTP_PORTS" && int.TryParse(variable.Value?.Split(';')[0], out var port))
                return new Uri($"http://localhost:{port}");
        }
        return null;
    }

    /// <summary>A client for the gateway at <paramref name="baseAddress"/> with the API key.</summary>
    public static HttpClient GatewayClient(Uri baseAddress)
    {
        var client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromMinutes(2),
        };
        client.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        return client;
    }

    /// <summary>Downloads the files of a blob folder (a checkpoint) into <paramref name="directory"/>.</summary>
    public async Task DownloadFolderAsync(string prefix, string directory, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        await foreach (var blob in RunsContainer.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, prefix, cancellationToken))
            await RunsContainer.GetBlobClient(blob.Name).DownloadToAsync(Path.Combine(directory, blob.Name[prefix.Length..]), cancellationToken);
    }

    public async Task<JsonObject?> ReadJsonAsync(string blobName, CancellationToken cancellationToken)
    {
        var blob = RunsContainer.GetBlobClient(blobName);
        if (!await blob.ExistsAsync(cancellationToken)) return null;
        return JsonNode.Parse((await blob.DownloadContentAsync(cancellationToken)).Value.Content.ToString())?.AsObject();
    }

    public async ValueTask DisposeAsync()
    {
        Gateway?.Dispose();
        Dashboard?.Dispose();
        if (_app is not null)
        {
            Console.Error.WriteLine("[bench] stopping the AppHost");
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
                await _app.StopAsync(timeout.Token);
            }
            catch (Exception e) { Console.Error.WriteLine($"[bench] stopping the AppHost: {e.Message}"); }
            await _app.DisposeAsync();
            _app = null!;
        }
        if (_dataDirectory is not null && Directory.Exists(_dataDirectory))
        {
            try { Directory.Delete(_dataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}
