using Pgkd.Core.Teacher;

namespace Pgkd.Core.Tests.Teacher;

/// <summary>Issue 21 point 6: a round the teacher gave nothing says why and what to do.</summary>
public sealed class TeacherShortfallTests
{
    private static Dictionary<string, int> Rejected(params (string Reason, int Count)[] counts) => counts.ToDictionary(c => c.Reason, c => c.Count);

    [Fact]
    public void A_teacher_that_returned_nothing_is_named_with_the_fix()
    {
        var shortfall = TeacherShortfall.Diagnose(16, 0, Rejected());
        Assert.NotNull(shortfall);
        Assert.Equal(TeacherShortfall.NoSamples, shortfall.Kind);
        Assert.Contains("returned no samples for the 16 requested", shortfall.Cause);
        Assert.Contains("--pool FILE", shortfall.Fix);
        Assert.Contains("real teacher", shortfall.Fix);
    }

    [Fact]
    public void A_teacher_that_returned_only_unknown_labels_is_named_with_the_fix()
    {
        var shortfall = TeacherShortfall.Diagnose(16, 0, Rejected(("UnknownLabel", 9)));
        Assert.Equal(TeacherShortfall.OnlyUnknownLabels, shortfall?.Kind);
        Assert.Contains("all 9 samples", shortfall!.Cause);
    }

    [Theory]
    [InlineData(16, 3, 0, 0, null)]            // samples came
    [InlineData(0, 0, 0, 0, null)]             // none asked for
    [InlineData(16, 0, 2, 0, null)]            // unusable replies: reported on their own
    [InlineData(16, 0, 0, 1, null)]            // content filter: reported on its own
    [InlineData(16, 0, 0, 0, "token budget")]  // the budget stopped generation
    public void Other_rounds_get_no_diagnosis(int requested, int accepted, int unusable, int filtered, string? stop) =>
        Assert.Null(TeacherShortfall.Diagnose(requested, accepted, Rejected(), unusable, filtered, stop));

    [Fact]
    public void Mixed_rejections_are_not_blamed_on_the_labels() =>
        Assert.Null(TeacherShortfall.Diagnose(16, 0, Rejected(("UnknownLabel", 3), ("DuplicateOfTraining", 4))));
}
