using Azure.Identity;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenTelemetry;
using Pgkd.Contracts;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Registers a <see cref="BlobServiceClient"/> from <c>ConnectionStrings:blobs</c> with a health check.
/// The Aspire.Azure.Storage.Blobs integration is not served by the registry these machines reach, so the
/// client is registered here by hand.
/// </summary>
public static class PgkdBlobExtensions
{
    public static TBuilder AddPgkdBlobs<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var connectionString = builder.Configuration.GetConnectionString(ServiceNames.Blobs);
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new InvalidOperationException(
                $"ConnectionStrings:{ServiceNames.Blobs} is not set. Start the service through the AppHost (./build.sh run), " +
                "or set ConnectionStrings__blobs to a storage connection string or a blob endpoint URL.");

        builder.Services.AddSingleton(_ => CreateClient(connectionString));
        builder.Services.AddHealthChecks().AddCheck<BlobStorageHealthCheck>(ServiceNames.Blobs, tags: ["ready"]);
        return builder;
    }

    /// <summary>
    /// A bare endpoint URL (the cloud) authenticates with <see cref="DefaultAzureCredential"/> (managed identity);
    /// a key-based connection string (Azurite locally) is used as it is.
    /// </summary>
    public static BlobServiceClient CreateClient(string connectionString)
    {
        if (!connectionString.Contains('=') && Uri.TryCreate(connectionString, UriKind.Absolute, out var endpoint))
            return new BlobServiceClient(endpoint, new DefaultAzureCredential());
        return new BlobServiceClient(connectionString);
    }

    private sealed class BlobStorageHealthCheck(BlobServiceClient client) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            // Probes run every few seconds in every service: their storage calls would bury the round traces users
            // come to read, so they are not traced at all (the probe's answer says whether storage answered).
            using var untraced = SuppressInstrumentationScope.Begin();
            try
            {
                await using var pages = client.GetBlobContainersAsync(cancellationToken: cancellationToken)
                    .AsPages(pageSizeHint: 1).GetAsyncEnumerator(cancellationToken);
                await pages.MoveNextAsync();
                return HealthCheckResult.Healthy($"blob storage at {client.Uri} answers");
            }
            catch (Exception ex)
            {
                return HealthCheckResult.Unhealthy($"blob storage at {client.Uri} does not answer: {ex.Message}", ex);
            }
        }
    }
}
