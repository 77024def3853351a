using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Pgkd.Generator.Tests;

/// <summary>
/// A teacher endpoint that answers every request with one HTTP status and an OpenAI-style error, counting the requests:
/// for answers the emulator does not give to a well-formed request (400).
/// </summary>
internal sealed class FixedAnswerTeacher : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Counter _counter;

    private FixedAnswerTeacher(WebApplication app, Counter counter, string address)
    {
        _app = app;
        _counter = counter;
        ConnectionString = $"Endpoint={address.TrimEnd('/')}/v1;Model={TestTeacher.Model};Key=k;Kind=OpenAI";
    }

    public string ConnectionString { get; }

    public int Requests => Volatile.Read(ref _counter.Value);

    public static async Task<FixedAnswerTeacher> StartAsync(int status)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel().UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var counter = new Counter();
        app.Map("/{**path}", (HttpContext _) =>
        {
            Interlocked.Increment(ref counter.Value);
            return Results.Json(new { error = new { message = $"fixed answer {status}", type = "invalid_request_error", param = (string?)null, code = (string?)null } },
                statusCode: status);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new FixedAnswerTeacher(app, counter, address);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class Counter
    {
        public int Value;
    }
}
