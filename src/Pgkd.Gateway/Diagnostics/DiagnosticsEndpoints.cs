using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using MassTransit;
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

    public sealed record ServiceAnswer(string Service, bool Ok, string? BlobSha256, string? Error);

    public sealed record PingReport(Guid PingId, string BlobName, string BlobWritten, string BlobReadBack, string BlobSha256,
        IReadOnlyList<ServiceAnswer> Answers, IReadOnlyList<string> Silent, bool AllOk);

    public static IEndpointRouteBuilder MapDiagnostics(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/diagnostics/ping", PingAsync);
        return routes;
    }

    private static async Task<IResult> PingAsync(BlobServiceClient blobs, IPublishEndpoint bus, PingTracker tracker,
        CancellationToken cancellationToken, double timeoutSeconds = 15)
    {
        if (timeoutSeconds is <= 0 or > 120)
            return Results.Problem(statusCode: 400, title: "Invalid timeoutSeconds",
                detail: $"timeoutSeconds must be in (0, 120], was {timeoutSeconds}.");

        var pingId = Guid.NewGuid();
        var written = $"pgkd ping {pingId} at {DateTimeOffset.UtcNow:O}";
        var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(written)));

        var container = blobs.GetBlobContainerClient(Container);
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var blob = container.GetBlobClient($"ping-{pingId:N}.txt");
        await blob.UploadAsync(BinaryData.FromString(written), overwrite: false, cancellationToken);
        try
        {
            var readBack = (await blob.DownloadContentAsync(cancellationToken)).Value.Content.ToString();

            using var pending = tracker.Start(pingId);
            await bus.Publish(new Ping(pingId, blob.Uri, DateTimeOffset.UtcNow), cancellationToken);
            var received = await pending.CollectAsync(ServiceNames.PingResponders, TimeSpan.FromSeconds(timeoutSeconds), cancellationToken);

            var answers = received.Values
                .OrderBy(p => p.Service, StringComparer.Ordinal)
                .Select(p => new ServiceAnswer(p.Service, p.Error is null && p.BlobSha256 == sha, p.BlobSha256, p.Error))
                .ToList();
            var silent = ServiceNames.PingResponders.Where(s => !received.ContainsKey(s)).ToList();
            var allOk = readBack == written && silent.Count == 0 && answers.All(a => a.Ok);
            return Results.Ok(new PingReport(pingId, $"{Container}/{blob.Name}", written, readBack, sha, answers, silent, allOk));
        }
        finally
        {
            // A diagnostic blob has served its purpose once every service has read it.
            await blob.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
        }
    }
}
