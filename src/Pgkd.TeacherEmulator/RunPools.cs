using System.Collections.Concurrent;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Pgkd.Core.Data;
using Pgkd.Storage;

namespace Pgkd.TeacherEmulator;

/// <summary>
/// Which pool answers a request: the run's own pool when the gateway stored one for it
/// (<see cref="RunBlobLayout.Pool"/>, given with <c>pgkd run --pool FILE</c> or <c>"pool"</c> in <c>POST /v1/runs</c>),
/// else the emulator's default pool. The run is the request's run id (the OpenAI <c>user</c> field the generator
/// sets, or the <c>X-Pgkd-Run-Id</c> header), so other runs are unaffected. A run's pool is written before the run
/// starts, so whether it has one is looked up once per run and remembered; the lookup lists the blob name rather than
/// asking for the blob, so a run without a pool costs no 404.
/// An engine is dropped once its run has asked nothing for <see cref="IdleLimit"/>, and beyond <see cref="Capacity"/> runs the
/// least recently asked goes first (issue 19.1: one engine per run, never dropped, grew the emulator from 214 to 275 MiB over
/// 11 runs of a memory soak, 6-8 MiB a run). A run asked again after its engine was dropped gets a fresh one, which may
/// hand it a pool text it had before; the generator's duplicate check rejects it, as after an emulator restart.
/// </summary>
public sealed class RunPools(TeacherEngine defaultEngine, EmulatorOptions options, ILogger<RunPools> log, BlobServiceClient? blobs = null)
{
    /// <summary>Runs whose engines are kept at most: far more than run at once.</summary>
    public const int Capacity = 32;

    /// <summary>How long a run's engine outlives its last request: a run's rounds ask within a minute or two of each other.</summary>
    public static readonly TimeSpan IdleLimit = TimeSpan.FromMinutes(2);

    private sealed class Entry(Lazy<Task<TeacherEngine>> engine)
    {
        public Lazy<Task<TeacherEngine>> Engine { get; } = engine;
        public long LastUsed;
    }

    private readonly ConcurrentDictionary<Guid, Entry> _engines = new();
    private readonly object _evicting = new();

    public TeacherEngine Default => defaultEngine;

    public async Task<TeacherEngine> EngineForAsync(string runId, CancellationToken cancellationToken)
    {
        if (blobs is null || !Guid.TryParse(runId, out var id)) return defaultEngine;
        var entry = _engines.GetOrAdd(id, key => new Entry(new Lazy<Task<TeacherEngine>>(() => LoadAsync(key, CancellationToken.None))));
        Interlocked.Exchange(ref entry.LastUsed, Environment.TickCount64);
        Evict();
        try
        {
            return await entry.Engine.Value.WaitAsync(cancellationToken);
        }
        catch when (entry.Engine.Value.IsFaulted)
        {
            // A failed lookup (storage briefly away) is not remembered: the next request tries again.
            _engines.TryRemove(KeyValuePair.Create(id, entry));
            throw;
        }
    }

    /// <summary>How many runs' engines are kept now (at most <see cref="Capacity"/> once a request has returned).</summary>
    public int Count => _engines.Count;

    private void Evict()
    {
        var dropped = false;
        lock (_evicting)
        {
            var now = Environment.TickCount64;
            foreach (var pair in _engines)
                if (now - Interlocked.Read(ref pair.Value.LastUsed) > IdleLimit.TotalMilliseconds)
                    dropped |= _engines.TryRemove(pair);
            while (_engines.Count > Capacity && _engines.MinBy(p => Interlocked.Read(ref p.Value.LastUsed)) is var oldest)
                dropped |= _engines.TryRemove(oldest);
        }
        // An engine's index sits in the large-object heap, which only a full collection frees.
        if (dropped) ServiceMemory.ReleaseAfterJob();
    }

    private async Task<TeacherEngine> LoadAsync(Guid runId, CancellationToken cancellationToken)
    {
        var container = blobs!.GetBlobContainerClient(RunBlobLayout.Container);
        var name = RunBlobLayout.Pool(runId);
        try
        {
            var found = false;
            await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, name, cancellationToken))
                found |= item.Name == name;
            if (!found) return defaultEngine;
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return defaultEngine; // no runs container yet: no run has a pool
        }

        var content = await container.GetBlobClient(name).DownloadContentAsync(cancellationToken);
        using var stream = content.Value.Content.ToStream();
        var source = $"{RunBlobLayout.Container}/{name}";
        var data = DatasetReader.ReadJsonl(stream, source, new DatasetReadOptions { MaxTextLength = 100_000, AllowEmpty = true });
        var labels = data.Examples.Select(e => e.Label).Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        // The gateway already left out the run's seed, validation and test texts, so nothing more is excluded here.
        var pool = new TeacherPool(labels.Length > 0 ? new LabelSet(labels) : defaultEngine.Pool.Labels, data.Examples,
            new HashSet<string>(StringComparer.Ordinal), source);
        log.LogInformation("Run {RunId} answers from its own pool {Pool}: {Count} texts over {Labels} labels", runId, source, pool.Examples.Count, labels.Length);
        return new TeacherEngine(pool, options);
    }
}
