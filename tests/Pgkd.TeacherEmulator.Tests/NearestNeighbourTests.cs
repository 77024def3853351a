using System.Diagnostics;
using Pgkd.Core.Data;
using Xunit.Abstractions;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>
/// The inverted-index neighbours (<see cref="TfIdfIndex.Nearest"/>) against the all-pairs ranking they replaced: the same
/// neighbours in the same order with the same similarities, bit for bit, so label agreement, and with it every reply for a
/// given seed, is unchanged.
/// </summary>
public sealed class NearestNeighbourTests(ITestOutputHelper output)
{
    private static List<(int Index, double Similarity)> AllPairs(TfIdfIndex index, int i, int k) =>
        Enumerable.Range(0, index.Count).Where(j => j != i)
            .Select(j => (Index: j, Similarity: TfIdfIndex.Cosine(index.Document(i), index.Document(j))))
            .OrderByDescending(x => x.Similarity).ThenBy(x => x.Index)
            .Take(k).ToList();

    public static TheoryData<string> Pools()
    {
        var pools = new TheoryData<string> { Path.Combine(SharedData.DemoDataDirectory, "pool.jsonl") };
        foreach (var name in new[] { "agnews", "banking77" })
            if (SharedData.FindDataset(name) is { } folder) pools.Add(Path.Combine(folder, "pool.jsonl"));
        return pools;
    }

    [Theory]
    [MemberData(nameof(Pools))]
    public void Nearest_gives_the_all_pairs_ranking_bit_for_bit(string poolPath)
    {
        using var stream = File.OpenRead(poolPath);
        var texts = DatasetReader.ReadJsonl(stream, poolPath, new DatasetReadOptions { MaxTextLength = 100_000 }).Examples.Select(e => e.Text).ToList();
        var index = new TfIdfIndex(texts);
        // Every text of a small pool; an even spread of a large one (all pairs is what made the emulator slow).
        var step = Math.Max(1, index.Count / (index.Count > 5000 ? 40 : 100));
        var checkedTexts = 0;
        for (var i = 0; i < index.Count; i += step, checkedTexts++)
        {
            var ranking = AllPairs(index, i, int.MaxValue);
            foreach (var k in new[] { 1, 10, index.Count + 5 })
                Assert.Equal(ranking.Take(k), index.Nearest(i, k));
        }
        output.WriteLine($"{poolPath}: {checkedTexts} of {index.Count} texts checked");
    }

    [Fact]
    public void Texts_that_share_no_word_with_any_other_rank_the_rest_by_index()
    {
        var index = new TfIdfIndex(["alpha beta", "gamma delta", "alpha gamma", "zeta eta"]);
        Assert.Equal([(2, TfIdfIndex.Cosine(index.Document(0), index.Document(2))), (1, 0.0), (3, 0.0)], index.Nearest(0, 3));
        Assert.Equal([(0, 0.0), (1, 0.0)], index.Nearest(3, 2));
        Assert.Empty(new TfIdfIndex(["only one"]).Nearest(0, 5));
    }

    [Fact]
    public void Label_agreement_of_every_text_of_a_real_pool_is_computed_from_its_postings()
    {
        // Not a timing assertion: it prints what the emulator's warm-up costs on the largest pool here, for the record.
        var folder = SharedData.FindDataset("banking77") ?? SharedData.DemoDataDirectory;
        var poolPath = Path.Combine(folder, "pool.jsonl");
        using var stream = File.OpenRead(poolPath);
        var data = DatasetReader.ReadJsonl(stream, poolPath, new DatasetReadOptions { MaxTextLength = 100_000 });
        var labels = new LabelSet(data.Examples.Select(e => e.Label).Distinct().ToArray());
        var pool = new TeacherPool(labels, data.Examples, new HashSet<string>(), poolPath);
        var clock = Stopwatch.StartNew();
        pool.WarmUp(10);
        var agreements = Enumerable.Range(0, pool.Examples.Count).Select(i => pool.LabelAgreement(i, 10)).ToList();
        output.WriteLine($"{pool.Examples.Count} texts: label agreement of all in {clock.Elapsed.TotalSeconds:F2} s");
        Assert.All(agreements, a => Assert.InRange(a, 0, 1));
        Assert.True(agreements.Average() > 0.3, $"mean agreement {agreements.Average():F3}: neighbours should mostly share a label in a real pool");
    }
}
