using System.Text.Json;

namespace Pgkd.Student;

/// <summary>
/// A trained student in a folder: <c>student.pt</c> (TorchSharp state of every weight, to continue training),
/// <c>model.onnx</c> (the MiniLM graph with these weights + mean pooling + head; outputs <c>logits</c>, <c>probs</c>),
/// <c>model.int8.onnx</c> (the same graph with int8 weight matrices, <see cref="StudentQuantizer"/>) and
/// <c>metadata.json</c> (labels in order, max length, vocabulary hash, ...). metadata.json is written last, so a folder
/// with it is complete.
/// </summary>
public sealed class StudentCheckpoint
{
    public const string StateFileName = "student.pt";
    public const string OnnxFileName = "model.onnx";
    public const string Int8OnnxFileName = "model.int8.onnx";
    public const string MetadataFileName = "metadata.json";

    private StudentCheckpoint(string directory, StudentCheckpointMetadata metadata)
    {
        Directory = directory;
        Metadata = metadata;
    }

    public string Directory { get; }

    public StudentCheckpointMetadata Metadata { get; }

    public string StatePath => Path.Combine(Directory, StateFileName);

    public string OnnxPath => Path.Combine(Directory, OnnxFileName);

    public string Int8OnnxPath => Path.Combine(Directory, Int8OnnxFileName);

    public string MetadataPath => Path.Combine(Directory, MetadataFileName);

    /// <summary>The serving graph file of a precision: model.onnx or model.int8.onnx.</summary>
    public static string OnnxFileNameFor(StudentPrecision precision) => precision switch
    {
        StudentPrecision.Fp32 => OnnxFileName,
        StudentPrecision.Int8 => Int8OnnxFileName,
        _ => throw new ArgumentOutOfRangeException(nameof(precision), precision, null),
    };

    public static StudentCheckpoint Load(string directory)
    {
        var full = Path.GetFullPath(directory);
        var metadata = ReadMetadata(full);
        foreach (var f in new[] { StateFileName, OnnxFileName })
            if (!File.Exists(Path.Combine(full, f)))
                throw new FileNotFoundException($"The checkpoint {full} lacks {f}.");
        return new StudentCheckpoint(full, metadata);
    }

    public static StudentCheckpointMetadata ReadMetadata(string directory)
    {
        var path = Path.Combine(directory, MetadataFileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path} is missing: not a (complete) student checkpoint.", path);
        var m = JsonSerializer.Deserialize<StudentCheckpointMetadata>(File.ReadAllText(path), StudentCheckpointMetadata.Json)
            ?? throw new InvalidDataException($"{path} is empty.");
        if (m.Format != StudentCheckpointMetadata.CurrentFormat)
            throw new InvalidDataException($"{path}: format {m.Format}, expected {StudentCheckpointMetadata.CurrentFormat}.");
        return m;
    }

    internal static StudentCheckpoint Write(string directory, StudentModel model, StudentCheckpointMetadata metadata, byte[] baseModel)
    {
        var full = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(full);
        var metaPath = Path.Combine(full, MetadataFileName);
        if (File.Exists(metaPath)) File.Delete(metaPath); // incomplete until rewritten
        model.save(Path.Combine(full, StateFileName));
        var onnx = ExportOnnx(model, metadata, baseModel);
        WriteModel(onnx, Path.Combine(full, OnnxFileName));
        WriteModel(StudentQuantizer.QuantizeDynamicInt8(onnx), Path.Combine(full, Int8OnnxFileName));
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
        var props = new Dictionary<string, string>
        {
            ["pgkd.labels"] = JsonSerializer.Serialize(metadata.Labels),
            ["pgkd.max_length"] = metadata.MaxLength.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["pgkd.vocabulary_sha256"] = metadata.VocabularyHash,
            ["pgkd.base_model"] = metadata.BaseModel,
        };
        return MiniLMOnnx.BuildServingGraph(baseModel, model.Encoder.WeightsByHuggingFaceName(), (w, b, model.Classes), props);
    }
}

/// <summary>Which of a checkpoint's serving graphs to run: fp32 (model.onnx) or int8 weights (model.int8.onnx).</summary>
public enum StudentPrecision
{
    Fp32,
    Int8,
}
