using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Pgkd.TeacherEmulator;

/// <summary>
/// The emulator on a real Kestrel socket, without the bus and blobs the service adds: for tests and
/// tools that need an OpenAI-compatible endpoint in-process. Listens on http://127.0.0.1:0 (a free
/// loopback port) unless told otherwise.
/// </summary>
public sealed class TeacherEmulatorServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TeacherEmulatorServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The base address, e.g. http://127.0.0.1:43127/.</summary>
    public Uri Address { get; }

    /// <summary>The OpenAI-style base URL clients take (ends in /v1).</summary>
    public Uri OpenAiEndpoint => new(Address, "v1");

    public EmulatorStats Stats => _app.Services.GetRequiredService<EmulatorStats>();

    public TeacherEngine Engine => _app.Services.GetRequiredService<TeacherEngine>();

    /// <summary>Starts an emulator with <paramref name="settings"/> as configuration (keys like "Emulator:ApiKey").</summary>
    public static async Task<TeacherEmulatorServer> StartAsync(IDictionary<string, string?> settings, string url = "http://127.0.0.1:0")
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(TeacherEmulatorServer).Assembly.GetName().Name });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls(url);
        builder.AddTeacherEmulator();
        var app = builder.Build();
        app.MapTeacherEmulator();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TeacherEmulatorServer(app, new Uri(address.TrimEnd('/') + "/"));
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
