using Pgkd.Core.Data;

namespace Pgkd.Core.Tests.Data;

public class DatasetTests
{
    private static readonly Dataset Sample = new([new("Stocks rally", "Business"), new("Team wins cup", "Sports"), new("New chip", "Sci/Tech")]);

    [Fact]
    public void ContentHash_is_stable_and_changes_with_content_order_and_labels()
    {
        var same = new Dataset([new("Stocks  rally", "Business"), new("Team wins cup", "Sports"), new("New chip", "Sci/Tech")]);
        Assert.Equal(Sample.ContentHash, same.ContentHash); // whitespace-only difference: same normalised content
        Assert.Matches("^[0-9a-f]{64}$", Sample.ContentHash);

        var reordered = new Dataset(Sample.Examples.Reverse());
        Assert.NotEqual(Sample.ContentHash, reordered.ContentHash); // order matters (documented)

        var relabeled = new Dataset([new("Stocks rally", "World"), .. Sample.Examples.Skip(1)]);
        Assert.NotEqual(Sample.ContentHash, relabeled.ContentHash);

        // Length prefixes: moving a character between text and label changes the hash.
        Assert.NotEqual(new Dataset([new("ab", "c")]).ContentHash, new Dataset([new("a", "bc")]).ContentHash);
        Assert.NotEqual(Dataset.Empty.ContentHash, Sample.ContentHash);
    }

    [Fact]
    public void Deduplicate_keeps_the_first_of_each_normalised_text()
    {
        var d = new Dataset([new("a  b", "X"), new("c", "Y"), new("a b", "Z"), new("c", "Y")]);
        var unique = d.Deduplicate();
        Assert.Equal([new LabeledExample("a  b", "X"), new LabeledExample("c", "Y")], unique.Examples);
    }

    [Fact]
    public void Append_adds_at_the_end()
    {
        var grown = Sample.Append([new("More", "World")]);
        Assert.Equal(4, grown.Count);
        Assert.Equal("More", grown.Examples[^1].Text);
        Assert.Equal(3, Sample.Count); // immutable
    }

    [Fact]
    public void CountByLabel_counts_in_label_order_and_rejects_unknown_labels()
    {
        Assert.Equal([0, 1, 1, 1], Sample.CountByLabel(AgNews.Labels));
        Assert.Throws<ArgumentException>(() => Sample.CountByLabel(TestSupport.Abc));
    }

    [Fact]
    public void LabelIndices_are_in_example_order_and_name_an_unknown_label()
    {
        Assert.Equal([2, 1, 3], Sample.LabelIndices(AgNews.Labels));
        var error = Assert.Throws<ArgumentException>(() => Sample.LabelIndices(TestSupport.Abc));
        Assert.Contains("\"Business\"", error.Message);
    }

    [Fact]
    public void TextHashes_contains_every_text()
    {
        var hashes = Sample.TextHashes();
        Assert.Equal(3, hashes.Count);
        Assert.Contains(TextHash.Of("New chip"), hashes);
    }

    [Fact]
    public void Rejects_null_parts() =>
        Assert.Throws<ArgumentException>(() => new Dataset([new LabeledExample(null!, "X")]));
}

public class StratifiedSplitTests
{
    private static Dataset Make(int perA, int perB) => new(
        Enumerable.Range(0, perA).Select(i => new LabeledExample($"a{i}", "A"))
            .Concat(Enumerable.Range(0, perB).Select(i => new LabeledExample($"b{i}", "B"))));

    [Fact]
    public void Keeps_each_label_in_proportion_and_partitions_the_data()
    {
        var data = Make(50, 30);
        var split = StratifiedSplit.Split(data, 0.2, seed: 1);
        Assert.Equal(10, split.HeldOut.Examples.Count(e => e.Label == "A"));
        Assert.Equal(6, split.HeldOut.Examples.Count(e => e.Label == "B"));
        Assert.Equal(64, split.Remaining.Count);
        Assert.Equal(data.Examples.Select(e => e.Text).Order(),
            split.Remaining.Examples.Concat(split.HeldOut.Examples).Select(e => e.Text).Order());
    }

    [Fact]
    public void Rounds_half_away_from_zero_per_label()
    {
        var split = StratifiedSplit.Split(Make(5, 3), 0.5, seed: 0);
        Assert.Equal(3, split.HeldOut.Examples.Count(e => e.Label == "A")); // 2.5 -> 3
        Assert.Equal(2, split.HeldOut.Examples.Count(e => e.Label == "B")); // 1.5 -> 2
    }

    [Fact]
    public void Is_deterministic_for_a_seed_and_varies_with_it()
    {
        var data = Make(40, 40);
        var a = StratifiedSplit.Split(data, 0.25, 7);
        var b = StratifiedSplit.Split(data, 0.25, 7);
        var c = StratifiedSplit.Split(data, 0.25, 8);
        Assert.Equal(a.HeldOut.ContentHash, b.HeldOut.ContentHash);
        Assert.NotEqual(a.HeldOut.ContentHash, c.HeldOut.ContentHash);
    }

    [Fact]
    public void Keeps_original_relative_order()
    {
        var data = Make(20, 0);
        var held = StratifiedSplit.Split(data, 0.5, 3).HeldOut.Examples.Select(e => int.Parse(e.Text[1..])).ToArray();
        Assert.Equal(held.Order(), held);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(double.NaN)]
    public void Rejects_fractions_outside_zero_one(double fraction) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => StratifiedSplit.Split(Make(2, 2), fraction, 0));
}
