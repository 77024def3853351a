using Pgkd.Core.Data;
using Pgkd.Core.Guidance;

namespace Pgkd.Core.Tests.Guidance;

public class HardNegativeMinerTests
{
    // Index: true label, probabilities (A, B, C) -> prediction, confidence.
    private static readonly (string Label, double[] P)[] Rows =
    [
        ("A", [0.10, 0.90, 0.00]), // 0 wrong B .90
        ("A", [0.20, 0.00, 0.80]), // 1 wrong C .80
        ("B", [0.95, 0.05, 0.00]), // 2 wrong A .95
        ("B", [0.00, 1.00, 0.00]), // 3 right
        ("C", [0.40, 0.60, 0.00]), // 4 wrong B .60
        ("C", [0.30, 0.30, 0.40]), // 5 right
        ("A", [0.45, 0.55, 0.00]), // 6 wrong B .55 (under the threshold)
        ("A", [0.10, 0.90, 0.00]), // 7 wrong B .90 (ties with 0; 0 comes first)
        ("C", [0.70, 0.30, 0.00]), // 8 wrong A .70
        ("B", [0.60, 0.40, 0.00]), // 9 wrong A .60
    ];

    private static readonly LabeledExample[] Examples = Rows.Select((r, i) => new LabeledExample($"text {i}", r.Label)).ToArray();
    private static readonly double[][] Probabilities = Rows.Select(r => r.P).ToArray();

    private static HardNegativeSelection Mine(HardNegativeOptions options) =>
        HardNegativeMiner.Mine(Examples, Probabilities, TestSupport.Abc, options);

    private static int[] Indices(IEnumerable<HardNegative> h) => h.Select(x => int.Parse(x.Text[5..])).ToArray();

    [Fact]
    public void Ranks_mistakes_by_confidence_in_the_wrong_answer_above_the_threshold()
    {
        var s = Mine(new HardNegativeOptions { Threshold = 0.6, TopK = 100, MaxPerClass = 100 });
        Assert.Equal([2, 0, 7, 1, 8, 4, 9], Indices(s.HardNegatives));
        Assert.Equal(new HardNegative("text 2", "B", "A", 0.95), s.HardNegatives[0]);
    }

    [Fact]
    public void The_source_picks_validation_training_or_both_ranked_together()
    {
        // Validation: rows 0-4; training: rows 5-9, renamed so the source of each hard negative shows.
        var validation = (Examples[..5], (IReadOnlyList<IReadOnlyList<double>>)Probabilities[..5]);
        var training = (Examples[5..].Select(e => e with { Text = "train " + e.Text }).ToArray(), (IReadOnlyList<IReadOnlyList<double>>)Probabilities[5..]);
        var options = new HardNegativeOptions { Threshold = 0.6, TopK = 3, MaxPerClass = 100, CorrectSamples = 0, IncorrectSamples = 0 };

        string[] Texts(HardNegativeSource source, bool withTraining = true) => HardNegativeMiner
            .MineFromSource(options with { Source = source }, TestSupport.Abc, validation, withTraining ? training : null)
            .HardNegatives.Select(h => h.Text).ToArray();

        Assert.Equal(["text 2", "text 0", "text 1"], Texts(HardNegativeSource.Validation, withTraining: false));
        Assert.Equal(["train text 7", "train text 8", "train text 9"], Texts(HardNegativeSource.Training));
        Assert.Equal(["text 2", "text 0", "train text 7"], Texts(HardNegativeSource.Both)); // .95, .90, then .90 from training
        var e = Assert.Throws<ArgumentException>(() => Texts(HardNegativeSource.Both, withTraining: false));
        Assert.Contains("Hard negatives from Both need the round's training data", e.Message);
        Assert.Contains("Source must be Validation, Training or Both", string.Join("; ", (options with { Source = (HardNegativeSource)7 }).Validate()));
    }

    [Fact]
    public void Caps_per_true_class_then_takes_top_k()
    {
        Assert.Equal([2, 0, 7, 8, 4, 9], Indices(Mine(new HardNegativeOptions { Threshold = 0.6, TopK = 100, MaxPerClass = 2 }).HardNegatives));
        Assert.Equal([2, 0, 7], Indices(Mine(new HardNegativeOptions { Threshold = 0.6, TopK = 3, MaxPerClass = 2 }).HardNegatives));
        Assert.Empty(Mine(new HardNegativeOptions { TopK = 0 }).HardNegatives);
    }

    [Fact]
    public void Samples_correct_and_other_incorrect_predictions()
    {
        var s = Mine(new HardNegativeOptions { Threshold = 0.6, TopK = 3, MaxPerClass = 2, CorrectSamples = 5, IncorrectSamples = 10, Seed = 1 });
        Assert.Equal(["text 3", "text 5"], s.CorrectSamples.Select(x => x.Text).Order());
        Assert.All(s.CorrectSamples, x => Assert.True(x.IsCorrect));
        // Every mistake that is not already a hard negative: 1, 4, 6, 8, 9.
        Assert.Equal(["text 1", "text 4", "text 6", "text 8", "text 9"], s.IncorrectSamples.Select(x => x.Text).Order());
        Assert.All(s.IncorrectSamples, x => Assert.False(x.IsCorrect));
    }

    [Fact]
    public void Is_deterministic_for_a_seed_and_the_seed_matters()
    {
        var options = new HardNegativeOptions { Threshold = 0.99, IncorrectSamples = 3, CorrectSamples = 1, Seed = 5 };
        var a = Mine(options);
        var b = Mine(options);
        Assert.Equal(a.IncorrectSamples, b.IncorrectSamples);
        Assert.Equal(a.CorrectSamples, b.CorrectSamples);
        var differs = Enumerable.Range(6, 20).Any(seed => !Mine(options with { Seed = seed }).IncorrectSamples.SequenceEqual(a.IncorrectSamples));
        Assert.True(differs);
        // Asking for more correct samples leaves the incorrect ones alone (separate streams).
        Assert.Equal(a.IncorrectSamples, Mine(options with { CorrectSamples = 2 }).IncorrectSamples);
    }

    [Fact]
    public void Validates_inputs()
    {
        Assert.Throws<ArgumentException>(() => HardNegativeMiner.Mine(Examples, Probabilities.Take(3).ToArray(), TestSupport.Abc));
        Assert.Throws<ArgumentException>(() => HardNegativeMiner.Mine([new("x", "Z")], [[1.0, 0, 0]], TestSupport.Abc));
        Assert.Throws<ArgumentException>(() => Mine(new HardNegativeOptions { Threshold = 2 }));
    }

    [Fact]
    public void Options_validation_names_the_field()
    {
        var errors = new HardNegativeOptions { Threshold = -1, TopK = -1, MaxPerClass = 0, CorrectSamples = -1, IncorrectSamples = -2 }.Validate("HardNegatives.");
        Assert.Equal(5, errors.Count);
        Assert.Contains("HardNegatives.Threshold must be between 0 and 1, was -1", errors);
        Assert.Contains("HardNegatives.MaxPerClass must be 1 or more, was 0", errors);
        Assert.Empty(HardNegativeOptions.Default.Validate());
    }
}
