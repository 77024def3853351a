using System.Security.Cryptography;
using Azure.Storage.Blobs;
using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Pgkd.Contracts;

namespace Microsoft.Extensions.Hosting;

/// <summary>Answers a <see cref="Ping"/> with the hash of the blob it names: proves bus and storage both work here.</summary>
internal sealed class PingConsumer(BlobServiceClient blobs, IConfiguration configuration, IHostEnvironment environment,
    ILogger<PingConsumer> logger) : IConsumer<Ping>
{
    public async Task Consume(ConsumeContext<Ping> context)
    {
        var service = configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } n ? n : environment.ApplicationName;
        string? sha = null, error = null;
        try
        {
            var address = new BlobUriBuilder(context.Message.BlobUri);
            var content = await blobs.GetBlobContainerClient(address.BlobContainerName).GetBlobClient(address.BlobName)
                .DownloadContentAsync(context.CancellationToken);
            sha = Convert.ToHexStringLower(SHA256.HashData(content.Value.Content.ToMemory().Span));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            error = $"could not read {context.Message.BlobUri}: {ex.Message}";
            logger.LogWarning(ex, "Ping {PingId}: {Error}", context.Message.PingId, error);
        }
        await context.Publish(new Pong(context.Message.PingId, service, sha, error, DateTimeOffset.UtcNow));
    }
}
