using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace Pgkd.Gateway.Tests;

/// <summary>
/// The gateway's own Program in memory, for what is decided before any endpoint runs (authentication, authorization,
/// the failed-sign-in limit): no broker or blob store is reached, because no request here gets past the front door
/// into an endpoint that uses them. The bus is not started; session cookies are sealed by <paramref name="dataProtection"/>
/// when given (two hosts sharing one act as replicas), else by keys in a temporary folder.
/// </summary>
public class GatewayHost(string apiKey, int failedAuthenticationPermits = 100_000, TimeSpan? failedAuthenticationWindow = null,
    IDataProtectionProvider? dataProtection = null) : WebApplicationFactory<Program>
{
    public const string Key = "gateway-test-key-0123456789";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseSetting("Gateway:ApiKey", apiKey);
        builder.UseSetting("ConnectionStrings:blobs", "UseDevelopmentStorage=true");
        builder.UseSetting("ConnectionStrings:rabbit", "amqp://guest:guest@127.0.0.1:1");
        builder.UseSetting("Gateway:PipelineCheckAtStart", "false"); // it would ping a pipeline these tests do not start
        builder.UseSetting("Gateway:FailedAuthentication:PermitLimit", failedAuthenticationPermits.ToString());
        builder.UseSetting("Gateway:FailedAuthentication:Window", (failedAuthenticationWindow ?? TimeSpan.FromHours(1)).ToString("c"));
        builder.ConfigureTestServices(services =>
        {
            // The bus would try to reach a broker this test has none of; nothing here publishes.
            foreach (var bus in services.Where(IsBusService).ToList()) services.Remove(bus);
            // Probes answer from the process alone: the blob and bus checks would wait on stores that are not there.
            services.Configure<HealthCheckServiceOptions>(o =>
            {
                foreach (var check in o.Registrations.Where(r => r.Name != "self").ToList()) o.Registrations.Remove(check);
            });
            // Keys in a folder of this test's own instead of the blob store, which these tests do not start.
            services.AddDataProtection().PersistKeysToFileSystem(Directory.CreateTempSubdirectory("pgkd-gateway-keys-"));
            if (dataProtection is not null) services.AddSingleton(dataProtection);
        });
    }

    private static bool IsBusService(ServiceDescriptor d) =>
        d.ServiceType == typeof(IHostedService)
        && (d.ImplementationType ?? d.ImplementationInstance?.GetType())?.Namespace?.StartsWith("MassTransit", StringComparison.Ordinal) == true;
}

/// <summary>The gateway with the test key and a limit no test reaches: shared by the tests of one class.</summary>
public sealed class DefaultGatewayHost() : GatewayHost(Key);
