using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage.Blobs;
using MassTransit;
using Pgkd.Contracts;

namespace Pgkd.Gateway.Diagnostics;

public sealed record ServiceAnswer(string Service, bool Ok, string? BlobSha256, string? Error);

public sealed record PingReport(Guid PingId, string BlobName, string BlobWritten, string BlobReadBack, string BlobSha256,
    IReadOnlyList<ServiceAnswer> Answers, IReadOnlyList<string> Silent, bool AllOk);

/// <summary>
/// One check of the whole pipeline: writes a blob, reads it back, publishes a <see cref="Ping"/> naming it and waits
/// for the expected services to answer with the blob's hash; the blob is deleted afterwards. Used by
/// <c>POST /api/diagnostics/ping</c> and by the check at start (<see cref="PipelineCheckAtStart"/>).
/// </summary>
public sealed class PipelinePing(BlobServiceClient blobs, IBus bus, PingTracker tracker)
{
    public async Task<PingReport> PingAsync(IReadOnlyCollection<string> expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var pingId = Guid.NewGuid();
        var written = $"pgkd ping {pingId} at {DateTimeOffset.UtcNow:O}";
        var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(written)));

        var container = blobs.GetBlobContainerClient(DiagnosticsEndpoints.Container);
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        var blob = container.GetBlobClient($"ping-{pingId:N}.txt");
        await blob.UploadAsync(BinaryData.FromString(written), overwrite: false, cancellationToken);
        try
        {
            var readBack = (await blob.DownloadContentAsync(cancellationToken)).Value.Content.ToString();

            using var pending = tracker.Start(pingId);
            await bus.Publish(new Ping(pingId, blob.Uri, DateTimeOffset.UtcNow), cancellationToken);
            var received = await pending.CollectAsync(expected, timeout, cancellationToken);

            var answers = received.Values
                .OrderBy(p => p.Service, StringComparer.Ordinal)
                .Select(p => new ServiceAnswer(p.Service, p.Error is null && p.BlobSha256 == sha, p.BlobSha256, p.Error))
                .ToList();
            var silent = expected.Where(s => !received.ContainsKey(s)).ToList();
            var allOk = readBack == written && silent.Count == 0 && answers.All(a => a.Ok);
            return new PingReport(pingId, $"{DiagnosticsEndpoints.Container}/{blob.Name}", written, readBack, sha, answers, silent, allOk);
        }
        finally
        {
            // A diagnostic blob has served its purpose once every service has read it.
            await blob.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
        }
    }
}

/// <summary>
/// At start the gateway pings the pipeline until each service has answered once (Gateway:PipelineCheckAtStart, on by
/// default): the log says at once whether the system is wired up, and each service's first trip through the bus
/// (deserializing, the consume pipeline, a publish: 40-100 ms of just-in-time compilation per service, Round anatomy)
/// happens here instead of in a user's first round. Services still starting are pinged again every few seconds.
/// </summary>
public sealed class PipelineCheckAtStart(PipelinePing ping, IConfiguration configuration, ILogger<PipelineCheckAtStart> logger)
    : BackgroundService
{
    /// <summary>The services that take the rounds' commands; the teacher emulator answers too when it runs, but need not.</summary>
    public static readonly IReadOnlyList<string> Pipeline = [ServiceNames.Orchestrator, ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!configuration.GetValue("Gateway:PipelineCheckAtStart", true)) return;
        var clock = Stopwatch.StartNew();
        var waitingFor = new HashSet<string>(Pipeline, StringComparer.OrdinalIgnoreCase);
        var failed = new List<string>();
        var deadline = TimeSpan.FromMinutes(configuration.GetValue("Gateway:PipelineCheckMinutes", 5.0));
        while (waitingFor.Count > 0 && clock.Elapsed < deadline && !stoppingToken.IsCancellationRequested)
        {
            try
            {
                var report = await ping.PingAsync(waitingFor, TimeSpan.FromSeconds(5), stoppingToken);
                foreach (var answer in report.Answers.Where(a => waitingFor.Remove(a.Service) && !a.Ok))
                    failed.Add($"{answer.Service}: {answer.Error ?? "answered with another hash"}");
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // Blobs or the broker not reachable yet: try again shortly, like a service that is still starting.
                logger.LogDebug(e, "Pipeline check: ping failed; trying again");
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
        if (waitingFor.Count == 0 && failed.Count == 0)
            logger.LogInformation("Pipeline check at start: {Services} answered through the bus and read a blob, {Seconds:F1} s after the gateway started",
                string.Join(", ", Pipeline), clock.Elapsed.TotalSeconds);
        else if (!stoppingToken.IsCancellationRequested)
            logger.LogWarning("Pipeline check at start: {Silent} did not answer within {Minutes} min{Failed}. POST /api/diagnostics/ping checks again.",
                waitingFor.Count == 0 ? "every service" : string.Join(", ", waitingFor), deadline.TotalMinutes,
                failed.Count == 0 ? "" : "; " + string.Join("; ", failed));
    }
}
