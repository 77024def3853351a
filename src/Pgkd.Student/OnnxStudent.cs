using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace Pgkd.Student;

/// <summary>
/// Serving: a student checkpoint's model.onnx (or model.int8.onnx) under ONNX Runtime (package Microsoft.ML.OnnxRuntime.Gpu:
/// CUDA execution provider when present, CPU otherwise). One session, reused; thread-safe.
/// </summary>
public sealed class OnnxStudent : IStudentClassifier
{
    private readonly InferenceSession _session;
    private readonly OnnxRunOptions _options;

    private OnnxStudent(InferenceSession session, string provider, StudentCheckpointMetadata metadata, StudentTokenizer tokenizer, OnnxRunOptions options,
        StudentPrecision precision)
    {
        Precision = precision;
        _session = session;
        ExecutionProvider = provider;
        Metadata = metadata;
        Tokenizer = tokenizer;
        _options = options;
    }

    /// <summary>Which serving graph runs: model.onnx (fp32) or model.int8.onnx.</summary>
    public StudentPrecision Precision { get; }

    /// <summary>"CUDA" or "CPU".</summary>
    public string ExecutionProvider { get; }

    public StudentCheckpointMetadata Metadata { get; }

    /// <summary>Labels in output order: column i of the probabilities is Labels[i].</summary>
    public IReadOnlyList<string> Labels => Metadata.Labels;

    public int MaxLength => Metadata.MaxLength;

    public StudentTokenizer Tokenizer { get; }

    /// <summary>
    /// Loads a checkpoint folder (metadata.json and model.onnx, or model.int8.onnx for <see cref="StudentPrecision.Int8"/>;
    /// for a head-only checkpoint without them, head.onnx: the graph is composed with the pretrained encoder in memory).
    /// The tokenizer defaults to the pretrained MiniLM vocabulary, whose hash must match.
    /// </summary>
    public static OnnxStudent Load(string checkpointDirectory, OnnxRunOptions? options = null, StudentTokenizer? tokenizer = null,
        StudentPrecision precision = StudentPrecision.Fp32)
    {
        options ??= new OnnxRunOptions();
        var metadata = StudentCheckpoint.ReadMetadata(checkpointDirectory);
        tokenizer ??= StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure());
        if (!string.Equals(tokenizer.VocabularyHash, metadata.VocabularyHash, StringComparison.Ordinal))
            throw new InvalidOperationException($"The checkpoint was trained with vocabulary {metadata.VocabularyHash}, the tokenizer has {tokenizer.VocabularyHash}.");
        var what = $"student {Path.GetFileName(Path.GetFullPath(checkpointDirectory))} ({StudentCheckpoint.OnnxFileNameFor(precision)})";
        var (session, provider) = OrtSessions.Create(StudentCheckpoint.ServingGraph(checkpointDirectory, precision), options, what);
        return new OnnxStudent(session, provider, metadata, tokenizer, options, precision);
    }

    /// <summary>Class probabilities per text, in label order.</summary>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts) => Predict(texts).Probabilities;

    /// <summary>Logits and probabilities per text, in label order.</summary>
    public (float[][] Logits, float[][] Probabilities) Predict(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var rows = texts.Select(t => Tokenizer.Encode(t, MaxLength)).ToArray();
        var r = OrtSessions.RunBatched(_session, rows, Math.Max(1, _options.BatchSize), ["logits", "probs"], _options);
        return (r[0], r[1]);
    }

    /// <summary>
    /// Class probabilities for texts already encoded by <see cref="Tokenizer"/> (at most <see cref="MaxLength"/> ids each), in one
    /// ONNX Runtime run: the serving engine forms its own batches and calls this once per batch.
    /// </summary>
    public float[][] PredictEncoded(IReadOnlyList<long[]> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return rows.Count == 0 ? [] : OrtSessions.RunBatched(_session, rows, rows.Count, ["probs"], _options, oneRun: true)[0];
    }

    /// <summary>Index of the most probable label per text.</summary>
    public int[] PredictLabels(IReadOnlyList<string> texts) =>
        PredictProbabilities(texts).Select(p => Array.IndexOf(p, p.Max())).ToArray();

    public void Dispose() => _session.Dispose();
}

/// <summary>What a checkpoint folder's metadata.json holds.</summary>
public sealed record StudentCheckpointMetadata(
    string Format,
    string BaseModel,
    IReadOnlyList<string> Labels,
    int MaxLength,
    string VocabularyHash,
    string Mode,
    int Seed,
    long Steps,
    int TrainedExamples,
    string? ContinuedFrom,
    DateTimeOffset CreatedUtc,
    EncoderReference? Encoder = null)
{
    /// <summary>A complete checkpoint: student.pt, model.onnx and model.int8.onnx hold every weight.</summary>
    public const string CurrentFormat = "pgkd-student/1";

    /// <summary>
    /// A head-only checkpoint: head.onnx holds what trained, <see cref="Encoder"/> names the pretrained encoder it runs on,
    /// and the complete graphs are composed from the two where they are needed (<see cref="StudentCheckpoint.ServingGraph"/>).
    /// </summary>
    public const string HeadOnlyFormat = "pgkd-student-head/1";

    /// <summary>Whether the folder holds only the head (and refers to <see cref="Encoder"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public bool IsHeadOnly => Format == HeadOnlyFormat;

    internal static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };
}
