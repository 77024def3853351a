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

    public static string[] PaddedBatchTexts { get; } =
    [
        "Stocks rallied on Wall Street.",
        "The national team lost the qualifier in extra time after a penalty shoot-out, ending a long unbeaten run that had started two years ago.",
        "NASA launches probe",
        "Parliament votes on the new budget as protests continue outside; police said the crowd was peaceful.",
        "",
    ];
}
