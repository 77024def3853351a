using Pgkd.Contracts;

namespace Pgkd.Gateway.Diagnostics;

/// <summary>
/// <c>POST /api/diagnostics/ping</c>: writes a blob, reads it back, publishes a <see cref="Ping"/> naming it and
/// waits for every pipeline service to answer with the blob's hash. One call shows the bus, the storage and each
/// service working together. It makes every service do work, so it needs the key like everything else; its answer
/// names the blob but not the storage account's address.
/// </summary>
public static class DiagnosticsEndpoints
{
    public const string Container = "diagnostics";

    public static IEndpointRouteBuilder MapDiagnostics(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/diagnostics/ping", PingAsync);
        return routes;
    }

    private static async Task<IResult> PingAsync(PipelinePing ping, CancellationToken cancellationToken, double timeoutSeconds = 15)
    {
        if (timeoutSeconds is <= 0 or > 120)
            return Results.Problem(statusCode: 400, title: "Invalid timeoutSeconds",
                detail: $"timeoutSeconds must be in (0, 120], was {timeoutSeconds}.");
        return Results.Ok(await ping.PingAsync(ServiceNames.PingResponders, TimeSpan.FromSeconds(timeoutSeconds), cancellationToken));
    }
}
