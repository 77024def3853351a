using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Azure.Storage.Blobs;
using Xunit;

namespace PgkdAspire.TestSupport;

/// <summary>A real Azurite blob service (installed by ./build.sh bootstrap) on a free port with a temporary folder.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    private Process? _process;
    private string _location = "";

    public BlobServiceClient Blobs { get; private set; } = null!;

    /// <summary>The connection string of <see cref="Blobs"/>, for a service under test (ConnectionStrings:blobs).</summary>
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var azurite = Repository.NodeTool("azurite-blob");
        if (!File.Exists(azurite))
            throw new InvalidOperationException($"azurite not found at {azurite}: run ./build.sh bootstrap");

        var port = FreePorts.One();
        _location = Directory.CreateTempSubdirectory("pgkd-azurite").FullName;
        var start = new ProcessStartInfo(azurite)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "--blobHost", "127.0.0.1", "--blobPort", port.ToString(), "--location", _location,
                     "--disableTelemetry", "--skipApiVersionCheck", "--silent" })
            start.ArgumentList.Add(a);
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(200);
            }
        }

        ConnectionString =
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
            "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
            $"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;";
        Blobs = new BlobServiceClient(ConnectionString);
    }

    public Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        _process?.Dispose();
        if (Directory.Exists(_location)) Directory.Delete(_location, recursive: true);
        return Task.CompletedTask;
    }
}
