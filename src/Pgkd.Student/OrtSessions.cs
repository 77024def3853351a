using Microsoft.ML.OnnxRuntime;

namespace Pgkd.Student;

/// <summary>ONNX Runtime session options shared by serving and head-mode embedding.</summary>
public sealed record OnnxRunOptions
{
    /// <summary>Intra-op threads (0 = ONNX Runtime's default: one per core).</summary>
    public int Threads { get; init; }
    /// <summary>Try the CUDA execution provider first (falls back to CPU when CUDA is absent).</summary>
    public bool PreferCuda { get; init; } = true;
    /// <summary>Texts per Run call; texts are sorted by token length so each batch pads little.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>
    /// Padded tokens per Run call (texts × the longest). Small runs are not slower per token on 2 cores: with 1024 a
    /// 64-text request in data order ran 1.70x / 1.79x (fp32, two runs) and 4.02x / 4.16x (int8) the speed of one padded
    /// fp32 run, against 1.52x / 1.93x and 3.23x / 3.80x with 8192 (docs/results.md, Speed: a request of 64 texts).
    /// </summary>
    public int MaxBatchTokens { get; init; } = 1024;

    /// <summary>
    /// The most of a run's padded tokens that may be padding: length-sorted texts are cut into a new run where the next,
    /// longer text would pad the others past this share (<see cref="LengthBatches"/>; chosen in docs/results.md, Speed).
    /// </summary>
    public double MaxPaddingShare { get; init; } = 0.25;

    /// <summary>ONNX Runtime's graph optimization level (fusions such as attention, GELU, LayerNorm, bias adds).</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;
    /// <summary>Where to say which execution provider serves (and why CUDA was not taken).</summary>
    public Action<string>? Log { get; init; }

    /// <summary>ONNX Runtime's CPU arena allocator (<c>EnableCpuMemArena</c>): reuses freed blocks, but never returns them.</summary>
    public bool MemoryArena { get; init; } = true;

    /// <summary>Memory-pattern planning (<c>EnableMemoryPattern</c>): pre-plans buffers per input shape and keeps a plan per shape seen.</summary>
    public bool MemoryPattern { get; init; } = true;

    /// <summary>
    /// Let intra-op threads spin between parallel sections (ONNX Runtime's default, <c>session.intra_op.allow_spinning</c>).
    /// Spinning wins a little when the model has the cores to itself and loses when other work shares them: a server's
    /// request threads, tokenization and JSON then wait behind threads that only spin.
    /// </summary>
    public bool SpinWait { get; init; } = true;

    /// <summary>After each run, hand the arena's unused chunks back (run option <c>memory.enable_memory_arena_shrinkage</c>).</summary>
    public bool ShrinkArenaAfterRun { get; init; }
}

internal static class OrtSessions
{
    /// <summary>A session on CUDA when its provider loads and the session builds there, else on CPU.</summary>
    public static (InferenceSession Session, string Provider) Create(byte[] model, OnnxRunOptions options, string what)
    {
        if (options.PreferCuda)
        {
            SessionOptions? so = null;
            var env = OrtEnv.Instance();
            var level = env.EnvLogLevel;
            try
            {
                // The failed provider load is reported below in one line; keep ONNX Runtime's own error log quiet meanwhile.
                env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
                so = NewOptions(options);
                so.AppendExecutionProvider_CUDA(0);
                var session = new InferenceSession(model, so);
                options.Log?.Invoke($"{what}: ONNX Runtime serves with the CUDA execution provider.");
                return (session, "CUDA");
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException or InvalidOperationException)
            {
                var first = e.Message.Split('\n')[0];
                options.Log?.Invoke($"{what}: CUDA execution provider unavailable ({first}); using CPU.");
            }
            finally
            {
                env.EnvLogLevel = level;
                so?.Dispose();
            }
        }
        using var cpu = NewOptions(options);
        var s = new InferenceSession(model, cpu);
        options.Log?.Invoke($"{what}: ONNX Runtime serves with the CPU execution provider ({(options.Threads > 0 ? options.Threads.ToString(System.Globalization.CultureInfo.InvariantCulture) : "default")} threads).");
        return (s, "CPU");
    }

    private static SessionOptions NewOptions(OnnxRunOptions o)
    {
        var so = new SessionOptions
        {
            GraphOptimizationLevel = o.OptimizationLevel,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            InterOpNumThreads = 1,
            EnableCpuMemArena = o.MemoryArena,
            EnableMemoryPattern = o.MemoryPattern,
        };
        if (o.Threads > 0) so.IntraOpNumThreads = o.Threads;
        if (!o.SpinWait) so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return so;
    }

    /// <summary>
    /// Runs <paramref name="session"/> over the rows in length-sorted batches of at most <paramref name="batchSize"/>
    /// rows, cut further by the options' <see cref="OnnxRunOptions.MaxBatchTokens"/> and
    /// <see cref="OnnxRunOptions.MaxPaddingShare"/> unless <paramref name="oneRun"/>, and returns, per row and in the
    /// input order, the requested float outputs (each [batch, width]).
    /// </summary>
    public static float[][][] RunBatched(InferenceSession session, IReadOnlyList<long[]> rows, int batchSize, string[] outputs,
        OnnxRunOptions? options = null, bool oneRun = false)
    {
        options ??= new OnnxRunOptions();
        var results = outputs.Select(_ => new float[rows.Count][]).ToArray();
        var lengths = rows.Select(r => r.Length).ToArray();
        var runs = oneRun
            ? LengthBatches.Plan(lengths, Math.Max(1, rows.Count), long.MaxValue, 1)
            : LengthBatches.Plan(lengths, Math.Max(1, batchSize), options.MaxBatchTokens, options.MaxPaddingShare);
        using var runOptions = new RunOptions();
        if (options is { ShrinkArenaAfterRun: true, MemoryArena: true })
            runOptions.AddRunConfigEntry("memory.enable_memory_arena_shrinkage", "cpu:0");
        foreach (var idx in runs)
        {
            var batch = StudentTokenizer.Pad(idx.Select(i => rows[i]).ToArray());
            long[] shape = [batch.Count, batch.Length];
            using var ids = OrtValue.CreateTensorValueFromMemory(batch.InputIds, shape);
            using var mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, shape);
            using var types = OrtValue.CreateTensorValueFromMemory(new long[batch.InputIds.Length], shape);
            using var outValues = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], outputs);
            for (var o = 0; o < outputs.Length; o++)
            {
                var data = outValues[o].GetTensorDataAsSpan<float>();
                var width = data.Length / idx.Length;
                for (var r = 0; r < idx.Length; r++)
                    results[o][idx[r]] = data.Slice(r * width, width).ToArray();
            }
        }
        return results;
    }
}
