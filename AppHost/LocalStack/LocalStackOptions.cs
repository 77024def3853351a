using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;

namespace PgkdAspire.AppHost.LocalStack;

/// <summary>
/// Where the local RabbitMQ and Azurite of one AppHost instance listen and keep their data. Every value can be
/// overridden by an AppHost argument (<c>--rabbit-port 5673</c>), so a test AppHost can run beside a developer's.
/// Ports are fixed and not proxied: the broker and Azurite must be reachable at a known address, also by tools.
/// </summary>
public sealed record LocalStackOptions(
    string Instance,
    string DataDirectory,
    string ToolsDirectory,
    int RabbitPort,
    int RabbitManagementPort,
    int RabbitDistPort,
    int EpmdPort,
    int BlobPort)
{
    public const string RabbitServerPath = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    public const string BootstrapCommand = "./build.sh bootstrap";

    public string RabbitDirectory => Path.Combine(DataDirectory, "rabbitmq");
    public string AzuriteDirectory => Path.Combine(DataDirectory, "azurite");
    public string AzuriteBlobPath => Path.Combine(ToolsDirectory, "node_modules", ".bin", "azurite-blob");

    /// <summary>The arguments that set each port, as a user passes them; also the names used in error messages.</summary>
    public static class Args
    {
        public const string Instance = "instance";
        public const string DataDir = "data-dir";
        public const string RabbitPort = "rabbit-port";
        public const string RabbitManagementPort = "rabbit-management-port";
        public const string RabbitDistPort = "rabbit-dist-port";
        public const string EpmdPort = "epmd-port";
        public const string BlobPort = "blob-port";
    }

    public static LocalStackOptions FromConfiguration(IConfiguration configuration, string repositoryRoot)
    {
        var instance = configuration[Args.Instance] is { Length: > 0 } i ? i : "dev";
        if (!instance.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new LocalStackException($"--{Args.Instance} '{instance}' may hold only letters, digits, '-' and '_' (it names the broker node and the data folder).");

        var dataDirectory = configuration[Args.DataDir] is { Length: > 0 } d
            ? Path.GetFullPath(d)
            : Path.Combine(repositoryRoot, ".data", instance);

        return new LocalStackOptions(
            instance,
            dataDirectory,
            Path.Combine(repositoryRoot, ".tools"),
            Port(configuration, Args.RabbitPort, 5672),
            Port(configuration, Args.RabbitManagementPort, 15672),
            Port(configuration, Args.RabbitDistPort, 25672),
            // Not Erlang's default 4369: this instance's epmd is its own, and is ended with the broker.
            Port(configuration, Args.EpmdPort, 4371),
            Port(configuration, Args.BlobPort, 10000));
    }

    /// <summary>
    /// Fails fast, naming the problem and the fix, where the broker or Azurite could only fail later and
    /// quietly: a missing program, or a port another process holds.
    /// </summary>
    public void EnsureCanStart()
    {
        var problems = new List<string>();
        if (!File.Exists(RabbitServerPath))
            problems.Add($"rabbitmq-server not found at {RabbitServerPath}: run {BootstrapCommand}");
        if (!File.Exists(AzuriteBlobPath))
            problems.Add($"azurite not found at {AzuriteBlobPath}: run {BootstrapCommand}");

        foreach (var (port, arg) in new[]
                 {
                     (RabbitPort, Args.RabbitPort), (RabbitManagementPort, Args.RabbitManagementPort),
                     (RabbitDistPort, Args.RabbitDistPort), (BlobPort, Args.BlobPort),
                 })
        {
            if (IsPortInUse(port))
                problems.Add($"port {port} in use: stop what holds it (ss -ltnp 'sport = :{port}') or pass --{arg} <free port>");
        }

        if (problems.Count > 0)
            throw new LocalStackException("The local stack cannot start:" + Environment.NewLine + "  - " +
                                          string.Join(Environment.NewLine + "  - ", problems));
    }

    /// <summary>True when this process is the AppHost itself (not a test host that loaded it).</summary>
    public static bool IsStandalone =>
        System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name == typeof(LocalStackOptions).Assembly.GetName().Name;

    public static bool IsPortInUse(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Server.ExclusiveAddressUse = true;
            listener.Start();
            return false;
        }
        catch (SocketException)
        {
            return true;
        }
    }

    /// <summary>
    /// Ports free on loopback right now, for an AppHost beside a developer's (tests, benchmarks). All are held open
    /// together while choosing, so the same port is never handed out twice.
    /// </summary>
    public static int[] FreeLoopbackPorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }

    private static int Port(IConfiguration configuration, string key, int fallback)
    {
        var text = configuration[key];
        if (string.IsNullOrEmpty(text)) return fallback;
        return int.TryParse(text, out var port) && port is > 0 and < 65536
            ? port
            : throw new LocalStackException($"--{key} must be a TCP port (1-65535), was '{text}'.");
    }
}

/// <summary>A local-stack problem the user can fix; its message says how.</summary>
public sealed class LocalStackException(string message) : Exception(message);
