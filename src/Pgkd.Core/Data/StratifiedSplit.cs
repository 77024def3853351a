namespace Pgkd.Core.Data;

/// <summary>The two parts of a split; each keeps the original relative order of its examples.</summary>
public sealed record DatasetSplit(Dataset Remaining, Dataset HeldOut);

/// <summary>
/// Splits a dataset so every label keeps its proportion: from each label's n examples,
/// round(n × fraction) (midpoint away from zero) go to <see cref="DatasetSplit.HeldOut"/>. Labels are
/// visited in ordinal name order with one <see cref="SeededRandom"/>, so a seed always gives the same split.
/// </summary>
public static class StratifiedSplit
{
    public static DatasetSplit Split(Dataset dataset, double heldOutFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (!(heldOutFraction > 0 && heldOutFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(heldOutFraction), heldOutFraction, "The held-out fraction must be strictly between 0 and 1.");
        var random = new SeededRandom(seed);
        var heldOut = new bool[dataset.Count];
        var byLabel = dataset.Examples
            .Select((e, i) => (e.Label, Index: i))
            .GroupBy(x => x.Label, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal);
        foreach (var group in byLabel)
        {
            var indices = group.Select(x => x.Index).ToList();
            var take = (int)Math.Round(indices.Count * heldOutFraction, MidpointRounding.AwayFromZero);
            foreach (var i in random.Sample(indices, take)) heldOut[i] = true;
        }
        var examples = dataset.Examples;
        return new DatasetSplit(
            new Dataset(examples.Where((_, i) => !heldOut[i])),
            new Dataset(examples.Where((_, i) => heldOut[i])));
    }
}
