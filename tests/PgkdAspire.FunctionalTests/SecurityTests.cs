using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;

namespace PgkdAspire.FunctionalTests;

/// <summary>
/// Issue 8, point 6, against the shared AppHost after its real run: the local broker and blob store listen on loopback
/// only, and neither the gateway's API key nor the teacher's key shows up in the telemetry the dashboard holds.
/// (Constant-time comparison: <c>ApiKeyFilter</c> uses <c>CryptographicOperations.FixedTimeEquals</c>; the publish
/// manifest's secrets: <c>PgkdAspire.DeploymentTests.PublishManifestTests</c>.)
/// </summary>
[Collection(DistillationCollection.Name)]
public sealed class SecurityTests(DistillationRunFixture run)
{
    [Fact]
    public void The_local_broker_and_blob_store_listen_on_loopback_only()
    {
        var arguments = run.Arguments;
        var ports = new Dictionary<int, string>
        {
            [arguments.RabbitPort] = "AMQP", [arguments.RabbitManagementPort] = "RabbitMQ management",
            [arguments.RabbitDistPort] = "Erlang distribution", [arguments.EpmdPort] = "epmd", [arguments.BlobPort] = "Azurite blob",
        };
        var listeners = Listeners();
        foreach (var (port, what) in ports)
        {
            var bound = listeners.Where(l => l.Port == port).ToList();
            Assert.True(bound.Count > 0, $"nothing listens on {what} port {port}: {string.Join(", ", listeners.Select(l => $"{l.Address}:{l.Port}"))}");
            foreach (var listener in bound)
                Assert.True(IPAddress.IsLoopback(listener.Address), $"{what} listens on {listener.Address}:{port}, not on loopback");
        }
    }

    [Fact]
    public async Task Neither_the_gateway_key_nor_the_teacher_key_appears_in_logs_or_traces()
    {
        var model = run.App.Services.GetRequiredService<DistributedApplicationModel>();
        var teacherKey = await model.Resources.OfType<ParameterResource>().Single(p => p.Name == "teacher-key").GetValueAsync(default);
        Assert.False(string.IsNullOrEmpty(teacherKey));
        string[] secrets = [DistillationRunFixture.ApiKey, teacherKey!];

        // A request that carries the key, marked by a query parameter so its span can be found: something to leak.
        using (var classify = await run.Gateway.PostAsJsonAsync("/v1/classify?pgkdsecurityprobe=1", new { text = "The striker scored twice" }))
            Assert.Equal(HttpStatusCode.OK, classify.StatusCode);

        using var dashboard = run.DashboardApi();
        string spans = "", logs = "";
        for (var attempt = 0; attempt < 30; attempt++)
        {
            spans = await dashboard.GetStringAsync("/api/telemetry/spans?limit=100000");
            logs = await dashboard.GetStringAsync("/api/telemetry/logs?limit=100000");
            // Positive controls: the probe request's span has arrived, and the services' logs are there at all.
            if (spans.Contains("pgkdsecurityprobe", StringComparison.Ordinal) && logs.Contains("\"gateway\"", StringComparison.Ordinal)) break;
            await Task.Delay(1000);
        }
        Assert.Contains("pgkdsecurityprobe", spans);
        Assert.Contains("teacher-emulator", spans); // the generator's calls to the teacher (which carry its key) are traced
        Assert.Contains("\"gateway\"", logs);
        foreach (var secret in secrets)
        {
            Assert.False(spans.Contains(secret, StringComparison.Ordinal), "a key appears in the traces");
            Assert.False(logs.Contains(secret, StringComparison.Ordinal), "a key appears in the structured logs");
        }
    }

    private sealed record Listener(IPAddress Address, int Port);

    /// <summary>Every TCP socket in LISTEN state on this machine, from /proc/net/tcp and tcp6.</summary>
    private static List<Listener> Listeners()
    {
        var result = new List<Listener>();
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(file)) continue;
            foreach (var line in File.ReadLines(file).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 4 || fields[3] != "0A") continue; // 0A = LISTEN
                var local = fields[1].Split(':');
                var hex = Convert.FromHexString(local[0]);
                // The kernel prints each 32-bit word of the address in host (little-endian) order.
                for (var i = 0; i < hex.Length; i += 4) Array.Reverse(hex, i, 4);
                var address = new IPAddress(hex);
                if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
                result.Add(new Listener(address, int.Parse(local[1], NumberStyles.HexNumber)));
            }
        }
        return result;
    }
}
