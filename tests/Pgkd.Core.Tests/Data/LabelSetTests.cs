using Pgkd.Core.Data;

namespace Pgkd.Core.Tests.Data;

public class LabelSetTests
{
    [Fact]
    public void Keeps_order_and_finds_names_case_insensitively()
    {
        var labels = AgNews.Labels;
        Assert.Equal(["World", "Sports", "Business", "Sci/Tech"], labels.Names);
        Assert.Equal(4, labels.Count);
        Assert.Equal(1, labels.IndexOf("sports"));
        Assert.Equal(3, labels.IndexOf(" SCI/TECH "));
        Assert.Equal(-1, labels.IndexOf("Sprots"));
        Assert.Equal("Business", labels[2]);
    }

    [Fact]
    public void Rejects_duplicates_blank_names_and_empty_sets()
    {
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => new LabelSet("Sports", "sports")).Message);
        Assert.Throws<ArgumentException>(() => new LabelSet("A", " "));
        Assert.Throws<ArgumentException>(() => new LabelSet(Array.Empty<string>()));
    }

    [Theory]
    [InlineData("business", 2)]
    [InlineData("2", 2)]
    [InlineData(" 0 ", 0)]
    [InlineData("4", -1)]
    [InlineData("-1", -1)]
    [InlineData("Sprots", -1)]
    [InlineData(null, -1)]
    public void TryResolve_by_name_or_index(string? token, int expected)
    {
        var ok = AgNews.Labels.TryResolve(token, out var index);
        Assert.Equal(expected >= 0, ok);
        Assert.Equal(expected, index);
    }

    [Fact]
    public void Numeric_names_win_over_indices()
    {
        var labels = new LabelSet("1", "0");
        Assert.True(labels.TryResolve("1", out var i));
        Assert.Equal(0, i);
    }

    [Fact]
    public void FromLines_reads_names_descriptions_and_skips_comments()
    {
        var labels = LabelSet.FromLines("# classes\nWorld\tInternational news\r\n\nSports\n  \nSci/Tech\t  \n");
        Assert.Equal(["World", "Sports", "Sci/Tech"], labels.Names);
        Assert.Equal("International news", labels.Labels[0].Description);
        Assert.Null(labels.Labels[1].Description);
        Assert.Null(labels.Labels[2].Description);
    }

    [Fact]
    public void ToString_lists_the_names_for_messages() =>
        Assert.Equal("World, Sports, Business, Sci/Tech", AgNews.Labels.ToString());
}
