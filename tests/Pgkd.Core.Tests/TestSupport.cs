using System.Text;
using Pgkd.Core.Data;
using Pgkd.Core.Metrics;

namespace Pgkd.Core.Tests;

/// <summary>Small builders shared by the tests.</summary>
internal static class TestSupport
{
    public static readonly LabelSet AgNews = new("World", "Sports", "Business", "Sci/Tech");

    public static readonly LabelSet Abc = new("A", "B", "C");

    public static Stream StreamOf(string content) => new MemoryStream(Encoding.UTF8.GetBytes(content));

    /// <summary>A report whose only interesting part is per-class F1 (and optionally loss/accuracy).</summary>
    public static ValidationReport ReportWithF1(double[] f1, double loss = 0.5, double accuracy = 0.8, string[]? names = null) =>
        new(
            Count: 100,
            Accuracy: accuracy,
            PerClass: f1.Select((x, i) => new ClassMetrics(names?[i] ?? $"L{i}", x, x, x, 25)).ToArray(),
            MacroF1: f1.Average(),
            WeightedF1: f1.Average(),
            ConfusionMatrix: f1.Select(_ => (IReadOnlyList<int>)new int[f1.Length]).ToArray(),
            MeanCrossEntropy: loss,
            ExpectedCalibrationError: 0);

    public static ValidationReport ReportWithLoss(double loss) => ReportWithF1([0.8, 0.8, 0.8, 0.8], loss);
}

/// <summary>Finds ../shared/data relative to the folder that holds PgkdAspire.sln.</summary>
internal static class SharedData
{
    public static string? AgNewsFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "PgkdAspire.sln")))
            {
                var path = Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "data", "agnews"));
                return Directory.Exists(path) ? path : null;
            }
        }
        return null;
    }

    public const string MissingMessage =
        "../shared/data/agnews was not found next to the repository root; this test only checks real data when it is there (the data is never copied into the repo).";
}

/// <summary>A fact that reports itself skipped, with the reason, where the AG News data is absent.</summary>
internal sealed class AgNewsFactAttribute : FactAttribute
{
    public AgNewsFactAttribute()
    {
        if (SharedData.AgNewsFolder() is null) Skip = SharedData.MissingMessage;
    }
}
