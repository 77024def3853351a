using System.Diagnostics;
using Pgkd.Contracts;

namespace PgkdAspire.TestSupport;

/// <summary>
/// Arguments for an AppHost of its own: a unique instance name, a temporary data folder and free ports, so a test
/// AppHost runs beside a developer's (and beside another test's) without touching their broker or blobs.
/// </summary>
public sealed record TestAppHostArguments(string Instance, string DataDirectory, int RabbitPort, int RabbitManagementPort,
    int RabbitDistPort, int EpmdPort, int BlobPort)
{
    public static TestAppHostArguments Create()
    {
        var instance = $"test-{Guid.NewGuid():N}"[..17];
        var ports = FreePorts.Loopback(5);
        return new TestAppHostArguments(instance, Path.Combine(Path.GetTempPath(), "pgkd-" + instance),
            ports[0], ports[1], ports[2], ports[3], ports[4]);
    }

    public string[] ToArgs() =>
    [
        $"--instance={Instance}", $"--data-dir={DataDirectory}",
        $"--rabbit-port={RabbitPort}", $"--rabbit-management-port={RabbitManagementPort}",
        $"--rabbit-dist-port={RabbitDistPort}", $"--epmd-port={EpmdPort}", $"--blob-port={BlobPort}",
        // The bad-input, fuzz and wrong-key tests all come from one address on purpose; the failed-authentication limit has
        // tests of its own (Pgkd.Gateway.Tests.GatewayAuthenticationTests).
        "--Gateway:FailedAuthentication:PermitLimit=1000000",
    ];

    /// <summary>Processes this AppHost started that are still alive: the broker, its epmd, Azurite.</summary>
    public IReadOnlyList<string> LiveProcesses()
    {
        var alive = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' '); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            var ours = cmdline.Contains(DataDirectory, StringComparison.Ordinal)         // azurite --location, beam's mnesia dir
                       || cmdline.Contains($"pgkd-{Instance}@", StringComparison.Ordinal) // the broker node name
                       || (cmdline.Contains("epmd", StringComparison.Ordinal) && cmdline.Contains($"-port {EpmdPort}", StringComparison.Ordinal));
            if (ours) alive.Add($"{Path.GetFileName(dir)}: {cmdline.Trim()}");
        }
        return alive;
    }
}

/// <summary>The AppHost's resources, and a wait until all of them are healthy.</summary>
public static class AppHostResources
{
    public static readonly IReadOnlyList<string> All =
    [
        ServiceNames.Rabbit, ServiceNames.Blobs, ServiceNames.TeacherEmulator, ServiceNames.Orchestrator,
        ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator, ServiceNames.Gateway,
    ];

    /// <summary>
    /// Waits for each resource in turn with <paramref name="waitForHealthy"/> (pass the app's
    /// <c>ResourceNotifications.WaitForResourceHealthyAsync</c>: this library stays free of Aspire); a timeout names the
    /// resource that was not healthy.
    /// </summary>
    public static async Task WaitForAllHealthyAsync(Func<string, CancellationToken, Task> waitForHealthy, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var stopwatch = Stopwatch.StartNew();
        foreach (var name in All)
        {
            try
            {
                await waitForHealthy(name, cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"resource '{name}' was not healthy {stopwatch.Elapsed.TotalSeconds:F0} s after start");
            }
        }
    }
}
