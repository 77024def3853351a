using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using PgkdAspire.AppHost.LocalStack;

namespace PgkdAspire.FunctionalTests;

/// <summary>The AppHost's pre-flight: every problem a user can fix is named together with its fix.</summary>
public sealed class LocalStackOptionsTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Arguments_override_ports_instance_and_data_folder()
    {
        var options = LocalStackOptions.FromConfiguration(
            Config(("rabbit-port", "6001"), ("blob-port", "6002"), ("instance", "ci-1"), ("epmd-port", "6003")), "/repo");
        Assert.Equal(6001, options.RabbitPort);
        Assert.Equal(6002, options.BlobPort);
        Assert.Equal(6003, options.EpmdPort);
        Assert.Equal(15672, options.RabbitManagementPort);
        Assert.Equal("/repo/.data/ci-1", options.DataDirectory);
        Assert.Equal("/repo/.tools/node_modules/.bin/azurite-blob", options.AzuriteBlobPath);
    }

    [Theory]
    [InlineData("rabbit-port", "0")]
    [InlineData("blob-port", "70000")]
    [InlineData("rabbit-dist-port", "abc")]
    public void A_bad_port_argument_is_named(string key, string value)
    {
        var error = Assert.Throws<LocalStackException>(() => LocalStackOptions.FromConfiguration(Config((key, value)), "/repo"));
        Assert.Contains($"--{key}", error.Message);
        Assert.Contains(value, error.Message);
    }

    [Fact]
    public void An_instance_name_that_could_escape_the_data_folder_is_refused()
    {
        var error = Assert.Throws<LocalStackException>(() => LocalStackOptions.FromConfiguration(Config(("instance", "../x")), "/repo"));
        Assert.Contains("--instance", error.Message);
    }

    [Fact]
    public void Missing_azurite_names_the_bootstrap_command()
    {
        var emptyRepository = Directory.CreateTempSubdirectory("pgkd-norepo").FullName;
        try
        {
            var options = LocalStackOptions.FromConfiguration(Config(("blob-port", "1"), ("rabbit-port", "2")), emptyRepository) with
            {
                RabbitPort = FreePorts.One(), RabbitManagementPort = FreePorts.One(), RabbitDistPort = FreePorts.One(), BlobPort = FreePorts.One(),
            };
            var error = Assert.Throws<LocalStackException>(options.EnsureCanStart);
            Assert.Contains("azurite not found", error.Message);
            Assert.Contains("./build.sh bootstrap", error.Message);
            Assert.DoesNotContain("in use", error.Message);
        }
        finally
        {
            Directory.Delete(emptyRepository, recursive: true);
        }
    }

    [Fact]
    public void A_busy_broker_port_names_the_port_and_the_argument()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        Assert.True(LocalStackOptions.IsPortInUse(port));

        var options = new LocalStackOptions("t", "/tmp/t", "/nonexistent", port, FreePorts.One(), FreePorts.One(), FreePorts.One(), FreePorts.One());
        var error = Assert.Throws<LocalStackException>(options.EnsureCanStart);
        Assert.Contains($"port {port} in use", error.Message);
        Assert.Contains("--rabbit-port", error.Message);
    }
}
