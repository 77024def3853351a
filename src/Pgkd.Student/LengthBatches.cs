namespace Pgkd.Student;

/// <summary>
/// How texts of uneven token length are cut into ONNX Runtime runs. On CPU a run costs about its padded tokens
/// (texts × the longest), so a 64-text request in data order, padded to its one 128-token text, spends most of its
/// compute on padding; length-sorted runs whose padding stays a small share of their tokens do not
/// (docs/results.md, Speed).
/// </summary>
public static class LengthBatches
{
    /// <summary>
    /// Row indices in runs: the rows sorted by length (ties in input order), cut greedily so that each run holds at most
    /// <paramref name="maxTexts"/> rows and <paramref name="maxTokens"/> padded tokens (a single row longer than that
    /// runs alone), and its padding is at most <paramref name="maxPaddingShare"/> of its padded tokens (1 = never cut
    /// for padding). Every index appears exactly once.
    /// </summary>
    public static int[][] Plan(IReadOnlyList<int> lengths, int maxTexts, long maxTokens, double maxPaddingShare)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTexts, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        if (maxPaddingShare is < 0 or > 1 || double.IsNaN(maxPaddingShare)) throw new ArgumentOutOfRangeException(nameof(maxPaddingShare), maxPaddingShare, "must be from 0 to 1");
        var order = Enumerable.Range(0, lengths.Count).OrderBy(i => lengths[i]).ThenBy(i => i).ToArray();
        var runs = new List<int[]>();
        var start = 0;
        long real = 0;
        for (var k = 0; k < order.Length; k++)
        {
            // Ascending: the row being added is the run's longest, so the run pads to its length.
            var length = Math.Max(1, lengths[order[k]]);
            var count = k - start + 1;
            var padded = (long)count * length;
            if (count > 1 && (count > maxTexts || padded > maxTokens || padded - (real + length) > maxPaddingShare * padded))
            {
                runs.Add(order[start..k]);
                (start, real) = (k, 0);
            }
            real += length;
        }
        if (start < order.Length) runs.Add(order[start..]);
        return runs.ToArray();
    }
}
