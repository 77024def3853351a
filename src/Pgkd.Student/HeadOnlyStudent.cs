using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;

namespace Pgkd.Student;

/// <summary>A student that gives class probabilities per text, in the order of <see cref="Labels"/>.</summary>
public interface IStudentClassifier : IDisposable
{
    /// <summary>Labels in output order: column i of the probabilities is Labels[i].</summary>
    IReadOnlyList<string> Labels { get; }

    /// <summary>Class probabilities per text, in label order.</summary>
    float[][] PredictProbabilities(IReadOnlyList<string> texts);
}

/// <summary>
/// The pretrained encoder's sentence embeddings (the serving graph up to mean pooling, <c>sentence_embedding</c>), for scoring
/// head-only checkpoints without composing their 90 MB graph: one ONNX Runtime session for the life of the process (made on
/// first use), embeddings cached by text, so a service that scores every round of a run on the same validation texts embeds
/// them once. Thread-safe; keep one per process.
/// </summary>
public sealed class PretrainedEmbedder : IDisposable
{
    private readonly PretrainedMiniLM _pretrained;
    private readonly OnnxRunOptions _options;
    private readonly Lock _gate = new();
    private InferenceSession? _session;

    public PretrainedEmbedder(PretrainedMiniLM pretrained, StudentTokenizer tokenizer, OnnxRunOptions? options = null, SentenceEmbeddingCache? cache = null)
    {
        ArgumentNullException.ThrowIfNull(pretrained);
        ArgumentNullException.ThrowIfNull(tokenizer);
        _pretrained = pretrained;
        Tokenizer = tokenizer;
        _options = options ?? new OnnxRunOptions();
        Cache = cache ?? new SentenceEmbeddingCache();
    }

    public StudentTokenizer Tokenizer { get; }

    public SentenceEmbeddingCache Cache { get; }

    /// <summary>The encoder these embeddings come from; a head-only checkpoint must name the same.</summary>
    public EncoderReference Encoder => _pretrained.Reference;

    /// <summary>Sentence embeddings [384] per text at <paramref name="maxLength"/> tokens, from the cache where present.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var namespaceKey = "pretrained-" + Encoder.Sha256[..16];
        var keys = texts.Select(t => SentenceEmbeddingCache.Key(namespaceKey, maxLength, t)).ToArray();
        var result = new float[texts.Count][];
        var missing = new List<int>();
        for (var i = 0; i < texts.Count; i++)
            if (Cache.TryGet(keys[i], out var v)) result[i] = v;
            else missing.Add(i);
        if (missing.Count == 0) return result;
        var rows = missing.Select(i => Tokenizer.Encode(texts[i], maxLength)).ToArray();
        // One text per run: a cached vector must not depend on which texts were missing with it. Batched (padded to a
        // partner's length, or even with equal-length partners only) the same text came out up to 2e-7 apart, and a process
        // whose cache had been filled in another order (a restarted trainer or evaluator) trained and scored the same run
        // differently (issue 19.5, the chaos scenario; EmbeddingReplayTests). The price: a head-mode round 0 on AG News took
        // 18.7 s against 15.3 s batched (docs/results.md, Round anatomy); each text is embedded once per process.
        var vectors = OrtSessions.RunBatched(Session(), rows, 1, [MiniLMOnnx.SentenceEmbedding], _options)[0];
        for (var j = 0; j < missing.Count; j++)
        {
            result[missing[j]] = vectors[j];
            Cache.Set(keys[missing[j]], vectors[j]);
        }
        return result;
    }

    /// <summary>
    /// A head-only checkpoint folder (metadata.json and head.onnx) as a classifier over these embeddings. Its encoder reference
    /// must match <see cref="Encoder"/>.
    /// </summary>
    public HeadOnlyStudent LoadHead(string checkpointDirectory)
    {
        var full = Path.GetFullPath(checkpointDirectory);
        var metadata = StudentCheckpoint.ReadMetadata(full);
        if (!metadata.IsHeadOnly)
            throw new InvalidOperationException($"{full} is a complete checkpoint ({metadata.Format}), not a head-only one: load its model.onnx with {nameof(OnnxStudent)}.");
        if (!string.Equals(Tokenizer.VocabularyHash, metadata.VocabularyHash, StringComparison.Ordinal))
            throw new InvalidOperationException($"The checkpoint {full} was trained with vocabulary {metadata.VocabularyHash}, the tokenizer has {Tokenizer.VocabularyHash}.");
        StudentCheckpoint.EnsureEncoderMatches(metadata, _pretrained, full);
        var headPath = Path.Combine(full, StudentCheckpoint.HeadFileName);
        if (!File.Exists(headPath))
            throw new FileNotFoundException($"{headPath} is missing: a head-only checkpoint holds its head there.", headPath);
        var head = File.ReadAllBytes(headPath);
        // Checked here, so a wrong head fails with its file named rather than inside ONNX Runtime.
        MiniLMOnnx.HeadWeights(MiniLMOnnx.Parse(head), metadata.Labels.Count, headPath);
        var (session, _) = OrtSessions.Create(head, _options with { Threads = 1, PreferCuda = false, Log = null }, $"head {Path.GetFileName(full)}");
        return new HeadOnlyStudent(this, session, metadata);
    }

    private InferenceSession Session()
    {
        lock (_gate)
            return _session ??= OrtSessions.Create(MiniLMOnnx.BuildServingGraph(_pretrained.ReadModelBytes(), null, null).ToByteArray(), _options, "pretrained MiniLM embedder").Session;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _session?.Dispose();
            _session = null;
        }
    }
}

/// <summary>
/// A head-only checkpoint scored as its composed model.onnx would score it: the pretrained encoder's sentence embeddings
/// (<see cref="PretrainedEmbedder"/>, shared and cached) through the checkpoint's head.onnx, whose nodes are the serving
/// graph's last two (Gemm, Softmax).
/// </summary>
public sealed class HeadOnlyStudent : IStudentClassifier
{
    private readonly PretrainedEmbedder _embedder;
    private readonly InferenceSession _head;

    internal HeadOnlyStudent(PretrainedEmbedder embedder, InferenceSession head, StudentCheckpointMetadata metadata)
    {
        _embedder = embedder;
        _head = head;
        Metadata = metadata;
    }

    public StudentCheckpointMetadata Metadata { get; }

    public IReadOnlyList<string> Labels => Metadata.Labels;

    public float[][] PredictProbabilities(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) return [];
        var vectors = _embedder.Embed(texts, Metadata.MaxLength);
        var flat = new float[vectors.Length * MiniLMShape.Hidden];
        for (var i = 0; i < vectors.Length; i++) vectors[i].CopyTo(flat, i * MiniLMShape.Hidden);
        using var input = OrtValue.CreateTensorValueFromMemory(flat, [vectors.Length, MiniLMShape.Hidden]);
        using var runOptions = new RunOptions();
        using var outputs = _head.Run(runOptions, [MiniLMOnnx.SentenceEmbedding], [input], ["probs"]);
        var probs = outputs[0].GetTensorDataAsSpan<float>();
        var classes = Metadata.Labels.Count;
        var result = new float[texts.Count][];
        for (var i = 0; i < result.Length; i++) result[i] = probs.Slice(i * classes, classes).ToArray();
        return result;
    }

    public void Dispose() => _head.Dispose();
}
