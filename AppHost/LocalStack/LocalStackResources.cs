using System.Net.Sockets;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace PgkdAspire.AppHost.LocalStack;

/// <summary>Debian's rabbitmq-server run as a plain process; its connection string is an amqp:// URI.</summary>
public sealed class LocalRabbitMQResource(string name, string command, string workingDirectory)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public EndpointReference AmqpEndpoint => new(this, "amqp");

    // 127.0.0.1, not localhost: the broker listens on IPv4 loopback only.
    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"amqp://guest:guest@127.0.0.1:{AmqpEndpoint.Property(EndpointProperty.Port)}");
}

/// <summary>Azurite's blob service run as a plain Node process, with the well-known development account.</summary>
public sealed class AzuriteBlobResource(string name, string command, string workingDirectory)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    // Azurite's published development account key: it is not a secret.
    private const string DevelopmentAccountKey =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    public EndpointReference BlobEndpoint => new(this, "blob");

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DevelopmentAccountKey};BlobEndpoint=http://127.0.0.1:{BlobEndpoint.Property(EndpointProperty.Port)}/devstoreaccount1;");
}

public static class LocalStackExtensions
{
    /// <summary>
    /// RabbitMQ with its own node name, data and log folders under the instance folder, loopback only (the Erlang
    /// distribution port and epmd included), and the management plugin on.
    /// </summary>
    public static IResourceBuilder<LocalRabbitMQResource> AddLocalRabbitMQ(
        this IDistributedApplicationBuilder builder, string name, LocalStackOptions options)
    {
        var dir = options.RabbitDirectory;
        Directory.CreateDirectory(Path.Combine(dir, "mnesia"));
        Directory.CreateDirectory(Path.Combine(dir, "log"));
        File.WriteAllText(Path.Combine(dir, "rabbitmq.conf"),
            $"""
             listeners.tcp.default = 127.0.0.1:{options.RabbitPort}
             management.tcp.ip = 127.0.0.1
             management.tcp.port = {options.RabbitManagementPort}
             """);
        File.WriteAllText(Path.Combine(dir, "enabled_plugins"), "[rabbitmq_management].");

        var script = Path.Combine(builder.AppHostDirectory, "LocalStack", "run-rabbitmq.sh");
        var resource = new LocalRabbitMQResource(name, "bash", dir);
        return builder.AddResource(resource)
            .WithArgs(script)
            .WithEnvironment("HOME", dir) // the Erlang cookie lives here, per instance
            .WithEnvironment("RABBITMQ_NODENAME", $"pgkd-{options.Instance}@localhost")
            .WithEnvironment("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .WithEnvironment("RABBITMQ_NODE_PORT", options.RabbitPort.ToString())
            .WithEnvironment("RABBITMQ_DIST_PORT", options.RabbitDistPort.ToString())
            .WithEnvironment("ERL_EPMD_ADDRESS", "127.0.0.1")
            .WithEnvironment("ERL_EPMD_PORT", options.EpmdPort.ToString())
            .WithEnvironment("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}")
            .WithEnvironment("RABBITMQ_MNESIA_BASE", Path.Combine(dir, "mnesia"))
            .WithEnvironment("RABBITMQ_LOG_BASE", Path.Combine(dir, "log"))
            .WithEnvironment("RABBITMQ_LOGS", "-") // to stdout: the dashboard's console shows it
            .WithEnvironment("RABBITMQ_PID_FILE", Path.Combine(dir, "rabbitmq.pid"))
            .WithEnvironment("RABBITMQ_CONFIG_FILE", Path.Combine(dir, "rabbitmq.conf"))
            .WithEnvironment("RABBITMQ_ENABLED_PLUGINS_FILE", Path.Combine(dir, "enabled_plugins"))
            .WithEndpoint(port: options.RabbitPort, targetPort: options.RabbitPort, name: "amqp", scheme: "tcp", isProxied: false)
            .WithEndpoint(port: options.RabbitManagementPort, targetPort: options.RabbitManagementPort, name: "management", scheme: "http", isProxied: false)
            .WithTcpHealthCheck(builder, options.RabbitPort);
    }

    /// <summary>Azurite blob with a persistent <c>--location</c> (a restart keeps the data) and telemetry off.</summary>
    public static IResourceBuilder<AzuriteBlobResource> AddAzuriteBlobs(
        this IDistributedApplicationBuilder builder, string name, LocalStackOptions options)
    {
        Directory.CreateDirectory(options.AzuriteDirectory);
        var resource = new AzuriteBlobResource(name, options.AzuriteBlobPath, options.AzuriteDirectory);
        return builder.AddResource(resource)
            .WithArgs("--blobHost", "127.0.0.1", "--blobPort", options.BlobPort.ToString(),
                "--location", options.AzuriteDirectory, "--disableTelemetry",
                // Azure.Storage.Blobs 12.30 speaks a newer API version than Azurite 3.37 knows.
                "--skipApiVersionCheck")
            .WithEndpoint(port: options.BlobPort, targetPort: options.BlobPort, name: "blob", scheme: "http", isProxied: false)
            .WithTcpHealthCheck(builder, options.BlobPort);
    }

    private static IResourceBuilder<T> WithTcpHealthCheck<T>(this IResourceBuilder<T> resource,
        IDistributedApplicationBuilder builder, int port) where T : IResource
    {
        var key = $"{resource.Resource.Name}-tcp";
        builder.Services.AddHealthChecks().AddAsyncCheck(key, async cancellationToken =>
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port, cancellationToken);
                return HealthCheckResult.Healthy();
            }
            catch (SocketException ex)
            {
                return HealthCheckResult.Unhealthy($"127.0.0.1:{port} does not accept connections yet: {ex.Message}");
            }
        });
        return resource.WithHealthCheck(key);
    }
}
