using Pgkd.Core.Data;
using Pgkd.Student;
using Xunit;

// TorchSharp's thread count and seed are process-wide: tests that train must not overlap.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Pgkd.Student.Tests;

internal static class TestSupport
{
    /// <summary>The folder holding PgkdAspire.sln, found by walking up from the test binaries.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared/data/agnews relative to the repository root, or null where absent.</summary>
    public static string? AgNewsDirectory
    {
        get
        {
            var dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "data", "agnews"));
            return File.Exists(Path.Combine(dir, "seed_train.jsonl")) ? dir : null;
        }
    }

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

    /// <summary>A tiny, fixed four-class dataset for fast full-mode runs.</summary>
    public static readonly LabelSet Labels = new("World", "Sports", "Business", "Sci/Tech");

    public static readonly LabeledExample[] Tiny =
    [
        new("Leaders meet in Geneva to discuss the ceasefire in the region.", "World"),
        new("The striker scored twice as the home team won the cup final.", "Sports"),
        new("Shares fell after the bank reported lower quarterly profits.", "Business"),
        new("A new chip doubles battery life of laptops, the company said.", "Sci/Tech"),
        new("Elections were held peacefully across the country on Sunday.", "World"),
        new("The tennis champion retired after a long injury.", "Sports"),
        new("Oil prices rose as investors worried about supply.", "Business"),
        new("Scientists released open source software for genome analysis.", "Sci/Tech"),
    ];

    public static string[] PaddedBatchTexts { get; } =
    [
        "Stocks rallied on Wall Street.",
        "The national team lost the qualifier in extra time after a penalty shoot-out, ending a long unbeaten run that had started two years ago.",
        "NASA launches probe",
        "Parliament votes on the new budget as protests continue outside; police said the crowd was peaceful.",
        "",
    ];

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PgkdAspire.sln")))
                return dir.FullName;
        throw new InvalidOperationException($"PgkdAspire.sln not found above {AppContext.BaseDirectory}.");
    }
}

/// <summary>A fact that needs ../shared/data/agnews and is reported as skipped, with the reason, where it is absent.</summary>
public sealed class AgNewsFactAttribute : FactAttribute
{
    public AgNewsFactAttribute()
    {
        if (TestSupport.AgNewsDirectory is null)
            Skip = $"AG News data not found at {Path.GetFullPath(Path.Combine(TestSupport.RepoRoot, "..", "shared", "data", "agnews"))} " +
                   "(expected ../shared/data/agnews next to the repository; the data is never copied into the repo).";
    }
}
