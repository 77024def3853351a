using System.Collections.Concurrent;
using Pgkd.Student.Serving;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Gateway.Models;

/// <summary>A loaded student: the best checkpoint of one completed run, served with ONNX Runtime through its own inference engine.</summary>
public sealed class ServedModel(string id, Guid runId, int round, InferenceEngine engine) : IDisposable
{
    private int _leases;
    private int _retired;

    public string Id { get; } = id;
    public Guid RunId { get; } = runId;
    public int Round { get; } = round;
    public InferenceEngine Engine { get; } = engine;
    public OnnxStudent Student => Engine.Student;

    /// <summary>Counts a request in; false once the model is retired and disposed (the caller takes the new one).</summary>
    internal bool TryLease()
    {
        Interlocked.Increment(ref _leases);
        if (Volatile.Read(ref _retired) == 0) return true;
        Release();
        return false;
    }

    /// <summary>Counts a request out; the last one out of a retired model disposes it.</summary>
    internal void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0 && Volatile.Read(ref _retired) == 1) Dispose();
    }

    internal void Retire()
    {
        if (Interlocked.Exchange(ref _retired, 1) == 0 && Volatile.Read(ref _leases) == 0) Dispose();
    }

    public void Dispose()
    {
        Engine.Dispose();
        // The retired session's memory back to the system (issue 19.1: the gateway grew with every model swap), off the
        // request thread that may have released the last lease: the compacting GC takes a moment.
        ThreadPool.QueueUserWorkItem(_ => Pgkd.Student.ProcessMemory.Release());
    }
}

/// <summary>A model held for the length of one request: the swap to a newer model never pulls it away mid-request.</summary>
public readonly struct ModelLease(ServedModel model) : IDisposable
{
    public ServedModel Model { get; } = model;
    public void Dispose() => Model.Release();
}

/// <summary>
/// Which student the gateway serves: by default the best checkpoint of the latest completed run, swapped in when a
/// newer run completes; or, per request, a chosen run's. Loading happens off the request path where it can; a swap
/// is one reference exchange, and a replaced model is disposed only after its last in-flight request.
/// </summary>
public sealed class ModelRegistry(RunStore store, StudentTokenizer tokenizer, IConfiguration configuration, ILogger<ModelRegistry> logger)
    : IDisposable
{
    private const int MaxChosenModels = 4;
    private readonly SemaphoreSlim _loading = new(1, 1);
    private readonly ConcurrentDictionary<Guid, ServedModel> _chosen = new();
    private ServedModel? _default;

    public ServedModel? Default => Volatile.Read(ref _default);

    public static string IdOf(Guid runId, int round) => $"{runId:D}/round-{round}";

    /// <summary>The default model, or a completed run's; null when there is none (the caller answers 404).</summary>
    public async Task<ModelLease?> LeaseAsync(Guid? runId, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 3; attempt++)
        {
            var model = runId is { } id ? await ChosenAsync(id, cancellationToken) : Default ?? await RefreshDefaultAsync(cancellationToken);
            if (model is null) return null;
            if (model.TryLease()) return new ModelLease(model);
        }
        throw new InvalidOperationException("the served model kept changing; try again");
    }

    /// <summary>Serves the best checkpoint of the most recently completed run, if it is not served already.</summary>
    public async Task<ServedModel?> RefreshDefaultAsync(CancellationToken cancellationToken)
    {
        var latest = await LatestCompletedAsync(cancellationToken);
        if (latest is null) return Default;
        var id = IdOf(latest.RunId, latest.BestRound!.Value);
        if (Default?.Id == id) return Default;

        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (Default?.Id == id) return Default;
            var loaded = await LoadAsync(latest, cancellationToken);
            var previous = Interlocked.Exchange(ref _default, loaded);
            previous?.Retire();
            logger.LogInformation("Serving {ModelId} ({Provider}) in place of {Previous}", loaded.Id, loaded.Student.ExecutionProvider, previous?.Id ?? "nothing");
            return loaded;
        }
        finally
        {
            _loading.Release();
        }
    }

    public async Task<IReadOnlyList<RunManifest>> CompletedRunsAsync(CancellationToken cancellationToken)
    {
        var runs = new List<RunManifest>();
        await foreach (var id in store.ListRunIdsAsync(cancellationToken))
            if (await store.ReadManifestAsync(id, cancellationToken) is { Status: RunStatus.Completed, BestRound: not null } manifest)
                runs.Add(manifest);
        return runs.OrderByDescending(r => r.UpdatedAt).ToList();
    }

    private async Task<RunManifest?> LatestCompletedAsync(CancellationToken cancellationToken) =>
        (await CompletedRunsAsync(cancellationToken)).FirstOrDefault();

    private async Task<ServedModel?> ChosenAsync(Guid runId, CancellationToken cancellationToken)
    {
        if (Default?.RunId == runId) return Default;
        if (_chosen.TryGetValue(runId, out var cached)) return cached;
        var manifest = await store.ReadManifestAsync(runId, cancellationToken);
        if (manifest is not { Status: RunStatus.Completed, BestRound: not null }) return null;
        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (_chosen.TryGetValue(runId, out cached)) return cached;
            // Keep a few chosen models loaded; past that one is retired (disposed after its last request).
            if (_chosen.Count >= MaxChosenModels && _chosen.Keys.FirstOrDefault() is var some && _chosen.TryRemove(some, out var evicted))
                evicted.Retire();
            return _chosen[runId] = await LoadAsync(manifest, cancellationToken);
        }
        finally
        {
            _loading.Release();
        }
    }

    private async Task<ServedModel> LoadAsync(RunManifest run, CancellationToken cancellationToken)
    {
        var round = run.BestRound!.Value;
        var inference = InferenceOptions();
        var local = await CheckpointGraphs.EnsureLocalAsync(store, run.RunId, round, inference.Precision, logger, cancellationToken);
        var student = OnnxStudent.Load(local, new OnnxRunOptions
        {
            Threads = inference.EffectiveThreads,
            // Chosen by measurement (docs/results.md, Serving memory; 2 cores, 32 clients, mixed lengths and batch sizes,
            // 3 repetitions): the engine's batches come in many [texts, length] shapes, and with memory patterns (ORT's
            // default) RSS grew up to 1.3x in 50 s, to 691 MiB; pattern off stayed flat (end / warm-up <= 1.05) at 541 MiB
            // with the same model throughput (2868 vs 2867 padded tokens/s). Arena off, arena + shrink, and both off ended
            // at 587, 577 and 595 MiB and grew up to 1.20x, 1.21x and 1.13x; both off also ran 16-20% fewer tokens/s.
            MemoryArena = configuration.GetValue("Gateway:Inference:MemoryArena", true),
            MemoryPattern = configuration.GetValue("Gateway:Inference:MemoryPattern", false),
            ShrinkArenaAfterRun = configuration.GetValue("Gateway:Inference:ShrinkArenaAfterRun", false),
            // The model shares the cores with Kestrel, JSON and tokenization: threads that spin starve them.
            SpinWait = configuration.GetValue("Gateway:Inference:SpinWait", false),
            Log = message => logger.LogInformation("{Message}", message),
        }, tokenizer, inference.Precision);
        var id = IdOf(run.RunId, round);
        return new ServedModel(id, run.RunId, round, new InferenceEngine(student, inference, id));
    }

    /// <summary>Section <see cref="Pgkd.Student.Serving.InferenceOptions.Section"/>, validated: a wrong setting is named when a model loads.</summary>
    public InferenceOptions InferenceOptions() =>
        (configuration.GetSection(Pgkd.Student.Serving.InferenceOptions.Section).Get<InferenceOptions>() ?? new InferenceOptions()).Validated();

    public void Dispose()
    {
        Default?.Dispose();
        foreach (var model in _chosen.Values) model.Dispose();
    }
}
