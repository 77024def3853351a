using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Pgkd.Core.Data;

namespace Pgkd.Storage;

/// <summary>Stored data that differs from what a retry wanted to write: the store refuses to overwrite it.</summary>
public sealed class StoredDataConflictException(string message) : Exception(message);

/// <summary>
/// What an <c>Idempotency-Key</c> of <c>POST /v1/runs</c> was first used for: the SHA-256 of the key and of the request
/// body (canonical JSON), the run id it was given and when. Never deleted by the gateway, so keys are remembered as long
/// as the runs container is kept.
/// </summary>
public sealed record IdempotencyRecord(string KeySha256, string RequestSha256, Guid RunId, DateTimeOffset CreatedAt);

/// <summary>
/// Blob storage for runs. Why a manifest in blob storage rather than a saga repository: the run's state then
/// lives beside its data in the one store every service already uses, survives a restart of any service or of
/// RabbitMQ with nothing else to operate, and ETag conditions give compare-and-swap for free.
/// </summary>
public sealed class RunStore(BlobServiceClient blobs)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        // Metrics can be NaN (a loss before any step); stored as "NaN" rather than failing the write.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private const int MaxManifestAttempts = 20;

    /// <summary>
    /// The store's own spans name the HTTP statuses each call handles as answers (<c>pgkd.expected_http_status</c>), so
    /// ServiceDefaults' ExpectedAnswerProcessor does not show them as errors: a write-once retry's 409, a lost manifest
    /// race's 412, a run that has no manifest (404).
    /// </summary>
    public const string ActivitySourceName = "PgkdAspire.Storage";
    private const string ExpectedStatusTag = "pgkd.expected_http_status";
    private static readonly ActivitySource Tracing = new(ActivitySourceName);

    private static Activity? StartSpan(string name, string blobName, string expectedStatuses) =>
        Tracing.StartActivity(name)?.SetTag("pgkd.blob", blobName).SetTag(ExpectedStatusTag, expectedStatuses);
    private readonly BlobContainerClient _container = blobs.GetBlobContainerClient(RunBlobLayout.Container);

    public Uri UriOf(string blobName)
    {
        var uri = _container.GetBlobClient(blobName).Uri;
        // A folder (a checkpoint) keeps its trailing slash, which the blob client drops.
        return blobName.EndsWith('/') && !uri.AbsolutePath.EndsWith('/') ? new Uri(uri.AbsoluteUri + "/") : uri;
    }

    /// <summary>The blob name of a URI inside the runs container; throws for anything else.</summary>
    public string BlobNameOf(Uri uri)
    {
        var address = new BlobUriBuilder(uri);
        if (address.BlobContainerName != RunBlobLayout.Container || string.IsNullOrEmpty(address.BlobName))
            throw new ArgumentException($"{uri} is not a blob in the '{RunBlobLayout.Container}' container", nameof(uri));
        return uri.AbsolutePath.EndsWith('/') && !address.BlobName.EndsWith('/') ? address.BlobName + "/" : address.BlobName;
    }

    public async Task EnsureContainerAsync(CancellationToken cancellationToken = default) =>
        await _container.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: cancellationToken);

    /// <summary>
    /// Writes a blob that must never change. A retry that brings the same bytes succeeds (returns false: already
    /// stored); different bytes under the same name are refused and the stored data stays as it was.
    /// </summary>
    public Task<bool> WriteOnceAsync(string blobName, BinaryData content, CancellationToken cancellationToken = default) =>
        WriteOnceAsync(blobName, content, metadata: null, cancellationToken);

    /// <summary>The blob metadata entry that names the command whose step wrote a completion marker.</summary>
    public const string CommandMetadata = "pgkd_command";
    /// <summary>Blob metadata naming the build (<see cref="CodeVersion"/>) whose step wrote the output.</summary>
    public const string CodeMetadata = "pgkd_code";

    /// <summary>
    /// A step's completion marker (a shard's summary, training.json, an evaluation): written once, marked with the
    /// idempotency key of the command that produced it, which <see cref="ReadStepOutputAsync"/> checks.
    /// </summary>
    public Task<bool> WriteStepOutputAsync(string blobName, BinaryData content, string idempotencyKey, CancellationToken cancellationToken = default) =>
        WriteOnceAsync(blobName, content, new Dictionary<string, string> { [CommandMetadata] = idempotencyKey, [CodeMetadata] = CodeVersion.Current },
            cancellationToken);

    /// <summary>
    /// A step's completion marker if the command with <paramref name="idempotencyKey"/> has already been carried out
    /// (its output is stored: the handler only announces it again); null if not yet. Output stored under this name by
    /// a different command is refused with both keys named: two commands must never share an output.
    /// </summary>
    public async Task<BinaryData?> ReadStepOutputAsync(string blobName, string idempotencyKey, CancellationToken cancellationToken = default)
    {
        using var span = StartSpan("run-store.read-step-output", blobName, "404");
        try
        {
            var stored = (await _container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken)).Value;
            // Outputs stored before commands were named carry no key: they were written by the only command that could.
            if (stored.Details.Metadata.TryGetValue(CommandMetadata, out var by) && by != idempotencyKey)
            {
                var conflict = $"{RunBlobLayout.Container}/{blobName} was produced by command {by}, not by {idempotencyKey}; it is never overwritten";
                span?.SetStatus(ActivityStatusCode.Error, conflict);
                throw new StoredDataConflictException(conflict);
            }
            return stored.Content;
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private async Task<bool> WriteOnceAsync(string blobName, BinaryData content, IDictionary<string, string>? metadata, CancellationToken cancellationToken)
    {
        var blob = _container.GetBlobClient(blobName);
        using var span = StartSpan("run-store.write-once", blobName, "409 412");
        try
        {
            await blob.UploadAsync(content, new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All }, Metadata = metadata },
                cancellationToken);
            return true;
        }
        catch (RequestFailedException e) when (e.Status is (int)HttpStatusCode.Conflict or (int)HttpStatusCode.PreconditionFailed)
        {
            var stored = (await blob.DownloadContentAsync(cancellationToken)).Value.Content;
            span?.SetTag("pgkd.already_stored", true);
            if (Sha256(stored) == Sha256(content)) return false;
            var conflict = $"{RunBlobLayout.Container}/{blobName} already holds different content ({stored.ToMemory().Length} bytes); it is never overwritten";
            span?.SetStatus(ActivityStatusCode.Error, conflict);
            throw new StoredDataConflictException(conflict);
        }
    }

    /// <summary>
    /// Writes a blob that nothing refers to yet (a checkpoint file before its completion marker): a retry of a
    /// step that died half-way may replace it, because no message ever announced it.
    /// </summary>
    public async Task WriteUnannouncedAsync(string blobName, BinaryData content, CancellationToken cancellationToken = default) =>
        await _container.GetBlobClient(blobName).UploadAsync(content, overwrite: true, cancellationToken);

    /// <summary>
    /// <see cref="WriteUnannouncedAsync(string, BinaryData, CancellationToken)"/> streamed from a file: a 90 MB checkpoint file
    /// is not read into one array first (in a long-lived trainer such arrays are what the large-object heap keeps).
    /// </summary>
    public async Task WriteUnannouncedFromFileAsync(string blobName, string path, CancellationToken cancellationToken = default) =>
        await _container.GetBlobClient(blobName).UploadAsync(path, overwrite: true, cancellationToken);

    /// <summary>Copies every blob under <paramref name="prefix"/> into <paramref name="localDirectory"/>; returns the file count.</summary>
    public async Task<int> DownloadFolderAsync(string prefix, string localDirectory, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(localDirectory);
        var count = 0;
        await foreach (var item in _container.GetBlobsAsync(BlobTraits.None, BlobStates.None, prefix, cancellationToken))
        {
            var relative = item.Name[prefix.Length..];
            var target = Path.GetFullPath(Path.Combine(localDirectory, relative));
            if (!target.StartsWith(Path.GetFullPath(localDirectory), StringComparison.Ordinal))
                throw new InvalidDataException($"blob {item.Name} would land outside {localDirectory}");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            await _container.GetBlobClient(item.Name).DownloadToAsync(target, cancellationToken);
            count++;
        }
        return count;
    }

    /// <summary>One blob into a local file, streamed (a 90 MB student.pt is not held in memory).</summary>
    public async Task DownloadToFileAsync(string blobName, string path, CancellationToken cancellationToken = default) =>
        await _container.GetBlobClient(blobName).DownloadToAsync(path, cancellationToken);

    /// <summary>
    /// A stored dataset (seed data or a shard). It was validated and normalised when written, so reading it back
    /// imposes no length limit: only that every label still belongs to the run.
    /// </summary>
    public async Task<Dataset> ReadDatasetAsync(string blobName, LabelSet labels, CancellationToken cancellationToken = default)
    {
        await using var stream = (await ReadAsync(blobName, cancellationToken)).ToStream();
        return DatasetReader.ReadJsonl(stream, blobName,
            new DatasetReadOptions { Labels = labels, MaxTextLength = int.MaxValue, AllowEmpty = true });
    }

    public async Task<BinaryData> ReadAsync(string blobName, CancellationToken cancellationToken = default) =>
        (await _container.GetBlobClient(blobName).DownloadContentAsync(cancellationToken)).Value.Content;

    public async Task<bool> ExistsAsync(string blobName, CancellationToken cancellationToken = default) =>
        (await _container.GetBlobClient(blobName).ExistsAsync(cancellationToken)).Value;

    /// <summary>Stores a new run's manifest; a second create of the same run id is refused unless it is the same document.</summary>
    public Task<bool> CreateManifestAsync(RunManifest manifest, CancellationToken cancellationToken = default) =>
        WriteOnceAsync(RunBlobLayout.Manifest(manifest.RunId), BinaryData.FromObjectAsJson(manifest, Json), cancellationToken);

    /// <summary>
    /// Serializes and reads back a run's documents (manifest, evaluation, guidance) once, so a service's first message does not
    /// pay for building their JSON contracts (StartupWarmUp). Pure CPU; touches no storage.
    /// </summary>
    public static void WarmUpSerialization()
    {
        var runId = Guid.Empty;
        var manifest = new RunManifest
        {
            RunId = runId, CreatedAt = DateTimeOffset.UnixEpoch, Labels = [new LabelDefinition("a"), new LabelDefinition("b")],
            Configuration = Core.Run.RunConfiguration.Default,
            SeedTrain = new StoredDataset(RunBlobLayout.SeedTrain(runId), 2, ""), SeedValidation = new StoredDataset(RunBlobLayout.SeedValidation(runId), 2, ""),
        }.WithRound(new RoundRecord(0) { Accuracy = 1 });
        BinaryData.FromObjectAsJson(manifest, Json).ToObjectFromJson<RunManifest>(Json);
        var report = Core.Metrics.ClassificationMetrics.Evaluate([0, 1], [[0.9, 0.1], [0.2, 0.8]], new Core.Data.LabelSet("a", "b"));
        BinaryData.FromObjectAsJson(new RoundEvaluation(0, "Validation", "", report, Core.Guidance.HardNegativeSelection.Empty), Json)
            .ToObjectFromJson<RoundEvaluation>(Json);
        BinaryData.FromObjectAsJson(new RoundGuidance(1, [1, 1], new Core.Teacher.TeacherPromptOptions(), false, ""), Json).ToObjectFromJson<RoundGuidance>(Json);
    }

    public async Task<RunManifest?> ReadManifestAsync(Guid runId, CancellationToken cancellationToken = default) =>
        (await ReadManifestWithETagAsync(runId, cancellationToken))?.Manifest;

    /// <summary>
    /// Read, change, write only if nobody wrote in between (If-Match on the ETag); on a lost race, read again and
    /// reapply. <paramref name="change"/> must be a pure function of the manifest it is given; returning that same
    /// instance means there is nothing to record, and nothing is written.
    /// </summary>
    public async Task<RunManifest> UpdateManifestAsync(Guid runId, Func<RunManifest, RunManifest> change,
        CancellationToken cancellationToken = default)
    {
        var blob = _container.GetBlobClient(RunBlobLayout.Manifest(runId));
        using var span = StartSpan("run-store.update-manifest", blob.Name, "412");
        for (var attempt = 1; ; attempt++)
        {
            span?.SetTag("pgkd.attempts", attempt);
            var current = await ReadManifestWithETagAsync(runId, cancellationToken)
                          ?? throw new InvalidOperationException($"run {runId} has no manifest");
            var proposed = change(current.Manifest);
            // A change that returns the manifest it was given is "nothing to record": no write, no new UpdatedAt.
            if (ReferenceEquals(proposed, current.Manifest)) return current.Manifest;
            var changed = proposed with { UpdatedAt = DateTimeOffset.UtcNow };
            if (changed.RunId != runId)
                throw new InvalidOperationException($"a manifest change may not alter the run id ({runId} -> {changed.RunId})");
            try
            {
                await blob.UploadAsync(BinaryData.FromObjectAsJson(changed, Json),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = current.ETag } }, cancellationToken);
                return changed;
            }
            catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.PreconditionFailed && attempt < MaxManifestAttempts)
            {
                // Another service updated the run first: back off a little (jittered) and apply the change to its version.
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(5, 20 * attempt)), cancellationToken);
            }
        }
    }

    /// <summary>
    /// Claims an idempotency key for <paramref name="wanted"/> (conditional create, <c>If-None-Match: *</c>), or returns the
    /// record stored first: of two requests racing with one key, exactly one claims it and both get that record's run id.
    /// </summary>
    public async Task<(IdempotencyRecord Record, bool Claimed)> ClaimIdempotencyKeyAsync(IdempotencyRecord wanted, CancellationToken cancellationToken = default)
    {
        var blob = _container.GetBlobClient(RunBlobLayout.IdempotencyKey(wanted.KeySha256));
        using var span = StartSpan("run-store.write-once", blob.Name, "409 412");
        try
        {
            await blob.UploadAsync(BinaryData.FromObjectAsJson(wanted, Json),
                new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken);
            return (wanted, true);
        }
        catch (RequestFailedException e) when (e.Status is (int)HttpStatusCode.Conflict or (int)HttpStatusCode.PreconditionFailed)
        {
            span?.SetTag("pgkd.already_stored", true);
            var stored = (await blob.DownloadContentAsync(cancellationToken)).Value.Content.ToObjectFromJson<IdempotencyRecord>(Json)
                         ?? throw new InvalidDataException($"{RunBlobLayout.Container}/{blob.Name} is empty");
            return (stored, false);
        }
    }

    /// <summary>Run ids that have a manifest, in blob-name order (callers sort by the manifest's dates).</summary>
    public async IAsyncEnumerable<Guid> ListRunIdsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (!(await _container.ExistsAsync(cancellationToken)).Value) yield break; // no run stored yet
        await foreach (var item in _container.GetBlobsByHierarchyAsync(BlobTraits.None, BlobStates.None, "/", null, cancellationToken))
            if (item.IsPrefix && Guid.TryParse(item.Prefix.TrimEnd('/'), out var runId)
                && await ExistsAsync(RunBlobLayout.Manifest(runId), cancellationToken))
                yield return runId;
    }

    private async Task<(RunManifest Manifest, ETag ETag)?> ReadManifestWithETagAsync(Guid runId, CancellationToken cancellationToken)
    {
        using var span = StartSpan("run-store.read-manifest", RunBlobLayout.Manifest(runId), "404");
        try
        {
            var result = (await _container.GetBlobClient(RunBlobLayout.Manifest(runId)).DownloadContentAsync(cancellationToken)).Value;
            var manifest = result.Content.ToObjectFromJson<RunManifest>(Json)
                           ?? throw new InvalidDataException($"run {runId}: manifest.json is empty");
            return (manifest, result.Details.ETag);
        }
        catch (RequestFailedException e) when (e.Status == (int)HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    private static string Sha256(BinaryData data) => Convert.ToHexStringLower(SHA256.HashData(data.ToMemory().Span));
}
