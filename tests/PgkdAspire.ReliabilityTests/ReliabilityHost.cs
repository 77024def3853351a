using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Azure.Storage.Blobs;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Contracts;

namespace PgkdAspire.ReliabilityTests;

/// <summary>One real AppHost for a scenario, with helpers to start runs, find service processes and disturb them.</summary>
public sealed class ReliabilityHost : IAsyncDisposable
{
    public const string ApiKey = "pgkd-local-dev-key";

    public TestAppHostArguments Arguments { get; } = TestAppHostArguments.Create();
    public DistributedApplication App { get; private set; } = null!;
    public HttpClient Gateway { get; private set; } = null!;

    public static Task<ReliabilityHost> StartAsync(params string[] extraArgs) => StartAsync(configure: null, extraArgs);

    /// <summary>As above, with <paramref name="configure"/> changing the model before it is built (e.g. a service's settings).</summary>
    public static async Task<ReliabilityHost> StartAsync(Action<IDistributedApplicationTestingBuilder>? configure, params string[] extraArgs)
    {
        var host = new ReliabilityHost();
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(
            host.Arguments.ToArgs().Concat(extraArgs).ToArray());
        configure?.Invoke(builder);
        host.App = await builder.BuildAsync();
        await host.App.StartAsync();
        await AppHostResources.WaitForAllHealthyAsync(host.App.ResourceNotifications.WaitForResourceHealthyAsync, TimeSpan.FromMinutes(4));
        host.Gateway = host.App.CreateHttpClient(ServiceNames.Gateway);
        host.Gateway.DefaultRequestHeaders.Add("X-Api-Key", ApiKey);
        host.Gateway.Timeout = TimeSpan.FromMinutes(2);
        return host;
    }

    /// <summary>The demo run of the functional tests (by default 2 rounds, 16 samples a round, head mode, seed 7).</summary>
    public async Task<Guid> StartRunAsync(int seed = 7, int maxRounds = 2, int samplesPerRound = 16)
    {
        var request = await DemoRun.RequestAsync(seed, maxRounds, samplesPerRound);
        using var created = await Gateway.PostAsJsonAsync("/v1/runs", request);
        var body = await created.Content.ReadAsStringAsync();
        if (!created.IsSuccessStatusCode) throw new InvalidOperationException($"POST /v1/runs answered {(int)created.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("runId").GetGuid();
    }

    public async Task<JsonObject> RunAsync(Guid runId) => (await Gateway.GetFromJsonAsync<JsonObject>($"/v1/runs/{runId}"))!;

    /// <summary>Polls until <paramref name="condition"/> holds for the run's manifest; throws after the timeout.</summary>
    public async Task<JsonObject> WaitForAsync(Guid runId, Func<JsonObject, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            JsonObject run;
            try { run = await RunAsync(runId); }
            catch (HttpRequestException) { await Task.Delay(500); continue; } // the gateway may be reconnecting to blobs
            if (condition(run)) return run;
            if ((string?)run["status"] is "Failed" or "Cancelled" or "Completed" && !condition(run))
                throw new InvalidOperationException($"run {runId} ended ({run["status"]}) before: {what}. {run.ToJsonString()}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"run {runId}: not {what} after {timeout}: {run.ToJsonString()}");
            await Task.Delay(250);
        }
    }

    public Task<JsonObject> WaitForEndAsync(Guid runId, TimeSpan timeout) =>
        WaitForAsync(runId, r => (string?)r["status"] is "Completed" or "Failed" or "Cancelled", timeout, "finished");

    public int ProcessIdOf(string resource)
    {
        App.ResourceNotifications.TryGetCurrentState(resource, out var state);
        var pid = state?.Snapshot.Properties.FirstOrDefault(p => p.Name == "executable.pid")?.Value;
        return pid is null ? throw new InvalidOperationException($"no pid for {resource}") : Convert.ToInt32(pid);
    }

    /// <summary>The address the gateway's Kestrel listens on behind the Aspire proxy (its ASPNETCORE_URLS), or null.</summary>
    public Uri? GatewayDirectUrl()
    {
        if (!App.ResourceNotifications.TryGetCurrentState(ServiceNames.Gateway, out var state)) return null;
        var urls = state.Snapshot.EnvironmentVariables.FirstOrDefault(v => v.Name == "ASPNETCORE_URLS")?.Value;
        var first = urls?.Split(';', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault(u => u.StartsWith("http://", StringComparison.Ordinal));
        return first is null ? null : new Uri(first.Replace("+", "localhost", StringComparison.Ordinal).Replace("*", "localhost", StringComparison.Ordinal));
    }

    /// <summary>
    /// Resident memory of the service a resource's pid stands for. DCP starts a project through <c>dotnet run</c>, and the pid
    /// Aspire reports is that launcher's (a steady ~138 MiB whatever the service holds): the service is its child, the
    /// deepest process under it. Issue 19 found the earlier gateway figures (137-138 MiB) were the launcher's.
    /// </summary>
    public static long RssKiB(int pid) => OwnRssKiB(ServiceProcessOf(pid));

    private static long OwnRssKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    /// <summary>The deepest descendant of <paramref name="pid"/> (the largest, where several are equally deep), else the pid itself.</summary>
    public static int ServiceProcessOf(int pid)
    {
        var children = new Dictionary<int, List<int>>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var child)) continue;
            try
            {
                // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses, so read after the last ')'.
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
                (children.TryGetValue(parent, out var list) ? list : children[parent] = []).Add(child);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { } // gone meanwhile
        }
        var level = new List<int> { pid };
        while (true)
        {
            var next = level.SelectMany(p => children.GetValueOrDefault(p) ?? []).ToList();
            if (next.Count == 0) break;
            level = next;
        }
        return level.Count == 1 ? level[0] : level.MaxBy(p => { try { return OwnRssKiB(p); } catch (IOException) { return 0; } });
    }

    /// <summary>SIGKILL the service's process (no graceful stop), then start it again through Aspire.</summary>
    public async Task<string> KillAndStartAsync(string resource)
    {
        var pid = ProcessIdOf(resource);
        System.Diagnostics.Process.GetProcessById(pid).Kill(entireProcessTree: true);
        var commands = App.Services.GetRequiredService<ResourceCommandService>();
        // Let DCP see the exit before asking for a start.
        for (var i = 0; i < 40; i++)
        {
            App.ResourceNotifications.TryGetCurrentState(resource, out var s);
            if (s?.Snapshot.State?.Text is "Exited" or "Finished" or "FailedToStart") break;
            await Task.Delay(250);
        }
        var result = await commands.ExecuteCommandAsync(resource, KnownResourceCommands.StartCommand);
        if (!result.Success) throw new InvalidOperationException($"start {resource}: {result.Message}");
        await App.ResourceNotifications.WaitForResourceHealthyAsync(resource).WaitAsync(TimeSpan.FromMinutes(2));
        return $"killed pid {pid} (SIGKILL), started again";
    }

    /// <summary>
    /// Stops the process with SIGTERM (RabbitMQ's wrapper script stops the broker and its epmd; Azurite exits) and starts
    /// it again through Aspire; the broker's and Azurite's data folders stay. (Aspire's own restart command failed to
    /// stop the broker's wrapper script in time here.)
    /// </summary>
    public async Task<string> RestartAsync(string resource)
    {
        var before = ProcessIdOf(resource);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", before.ToString()])) await kill.WaitForExitAsync();
        for (var i = 0; i < 240; i++)
        {
            App.ResourceNotifications.TryGetCurrentState(resource, out var s);
            if (s?.Snapshot.State?.Text is "Exited" or "Finished" or "FailedToStart") break;
            await Task.Delay(250);
        }
        var down = watch.Elapsed;
        var commands = App.Services.GetRequiredService<ResourceCommandService>();
        var result = await commands.ExecuteCommandAsync(resource, KnownResourceCommands.StartCommand);
        if (!result.Success) throw new InvalidOperationException($"start {resource}: {result.Message}");
        await App.ResourceNotifications.WaitForResourceHealthyAsync(resource).WaitAsync(TimeSpan.FromMinutes(2));
        return $"stopped with SIGTERM ({down.TotalSeconds:F0} s) and started again, healthy after {watch.Elapsed.TotalSeconds:F0} s (pid {before} -> {ProcessIdOf(resource)})";
    }

    public async Task<BlobContainerClient> RunsContainerAsync() =>
        new BlobServiceClient(await App.GetConnectionStringAsync(ServiceNames.Blobs)).GetBlobContainerClient("runs");

    /// <summary>Lines of a JSONL blob of the run, as (text, label).</summary>
    public async Task<List<(string Text, string Label)>> ReadDatasetAsync(Guid runId, string name)
    {
        var container = await RunsContainerAsync();
        var content = (await container.GetBlobClient($"{runId:D}/{name}").DownloadContentAsync()).Value.Content.ToString();
        return content.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement)
            .Select(e => (e.GetProperty("text").GetString()!, e.GetProperty("label").GetString()!)).ToList();
    }

    public async Task<List<string>> BlobNamesAsync(Guid runId)
    {
        var container = await RunsContainerAsync();
        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, $"{runId:D}/", default)) names.Add(blob.Name[(runId.ToString().Length + 1)..]);
        return names;
    }

    /// <summary>
    /// The gateway's local model copies stayed bounded: each gateway process keeps at most Gateway:LocalModelCopies (8) of them
    /// in a folder of its own (<c>$TMPDIR/pgkd-gateway-models/{pid}/{run}-{round}</c>, the gateway's CheckpointGraphs). Before,
    /// it kept one per model ever served (about 90 MiB a head-mode run), and 197 chaos runs filled the disk.
    /// </summary>
    public static void AssertServedModelCopiesBounded(int max = 8)
    {
        var root = Path.Combine(Path.GetTempPath(), "pgkd-gateway-models");
        if (!Directory.Exists(root)) return;
        foreach (var process in Directory.EnumerateDirectories(root))
        {
            var copies = Directory.GetDirectories(process).Length;
            Xunit.Assert.True(copies <= max, $"{process} holds {copies} model copies, more than the {max} a gateway keeps");
        }
    }

    public async ValueTask DisposeAsync()
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

/// <summary>Appends the scenarios' measurements to artifacts/reliability/results.md (the source of docs/reliability.md's numbers).</summary>
public static class Results
{
    private static readonly object Gate = new();

    public static string FilePath => Repository.Path("artifacts", "reliability", "results.md");

    public static void Write(string section, IEnumerable<string> lines)
    {
        lock (Gate)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
            var text = new StringBuilder().AppendLine($"## {section} ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC)").AppendLine();
            foreach (var line in lines) text.AppendLine(line);
            File.AppendAllText(FilePath, text.AppendLine().ToString());
        }
    }
}
