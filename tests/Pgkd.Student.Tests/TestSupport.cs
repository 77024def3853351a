using Pgkd.Student;
using Xunit;

// TorchSharp's thread count and seed are process-wide: tests that train must not overlap.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Pgkd.Student.Tests;

internal static class TestSupport
{
    public static PretrainedMiniLM Pretrained => PretrainedMiniLM.Ensure();

    public static StudentTokenizer Tokenizer { get; } = StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure());

    /// <summary>One trainer for the whole test run (it caches the pretrained embedder and embeddings).</summary>
    public static StudentTrainer Trainer { get; } = new();

    public static string NewTempDirectory(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "pgkd-student-tests", $"{name}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// The same student as a complete checkpoint (student.pt, model.onnx, model.int8.onnx; format pgkd-student/1): what head
    /// mode wrote before checkpoints held the head only.
    /// </summary>
    public static StudentCheckpoint CompleteCopy(StudentCheckpoint checkpoint, string directory)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var model = new StudentModel(checkpoint.Metadata.Labels.Count);
        checkpoint.LoadWeights(model);
        return StudentCheckpoint.Write(directory, model,
            checkpoint.Metadata with { Format = StudentCheckpointMetadata.CurrentFormat, Encoder = null }, Pretrained.ReadModelBytes());
    }

    public static string[] PaddedBatchTexts { get; } =
    [
        "Stocks rallied on Wall Street.",
        "The national team lost the qualifier in extra time after a penalty shoot-out, ending a long unbeaten run that had started two years ago.",
        "NASA launches probe",
        "Parliament votes on the new budget as protests continue outside; police said the crowd was peaceful.",
        "",
    ];
}
