namespace Pgkd.Core.Guidance;

/// <summary>
/// How many new examples to ask the teacher for per class this round. Every class first gets the
/// floor; the rest is shared in proportion to (1 − F1) + smoothing, so weaker classes get more but
/// an easy class is not starved (allocation by 1 − F1 alone gave Sports 9–22 of 200 in calibration).
/// Largest-remainder rounding makes the counts sum exactly to the total.
/// </summary>
public static class ClassAllocation
{
    public const double DefaultSmoothing = 0.1;

    public static int[] Allocate(int total, IReadOnlyList<double> perClassF1, int floorPerClass, double smoothing = DefaultSmoothing)
    {
        ArgumentNullException.ThrowIfNull(perClassF1);
        var k = perClassF1.Count;
        if (k == 0) throw new ArgumentException("At least one class is needed.", nameof(perClassF1));
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        ArgumentOutOfRangeException.ThrowIfNegative(floorPerClass);
        if (!(smoothing > 0) || !double.IsFinite(smoothing))
            throw new ArgumentOutOfRangeException(nameof(smoothing), smoothing, "Smoothing must be a positive number.");
        for (var c = 0; c < k; c++)
            if (!(perClassF1[c] >= 0 && perClassF1[c] <= 1))
                throw new ArgumentException($"F1 of class {c} is {perClassF1[c]}, not in [0, 1].", nameof(perClassF1));
        if ((long)floorPerClass * k > total)
            throw new ArgumentException(
                $"A total of {total} cannot give the floor of {floorPerClass} to each of {k} classes (needs {(long)floorPerClass * k}).",
                nameof(total));

        var weights = perClassF1.Select(f1 => 1 - f1 + smoothing).ToArray();
        return Distribute(total - floorPerClass * k, weights, floorPerClass, perClassF1);
    }

    /// <summary>
    /// How a round's <paramref name="total"/> samples are split into teacher requests of at most <paramref name="size"/>:
    /// ceil(total / size) requests, as even as possible, the first ones one larger. The generator asks in these sizes,
    /// and the cost forecast counts them.
    /// </summary>
    public static int[] RequestSizes(int total, int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        var count = (total + size - 1) / size;
        return Enumerable.Range(0, count).Select(b => total / count + (b < total % count ? 1 : 0)).ToArray();
    }

    /// <summary>Equal shares (random augmentation): the first classes get the remainder's extra one.</summary>
    public static int[] Balanced(int total, int classCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classCount);
        return Distribute(total, Enumerable.Repeat(1.0, classCount).ToArray(), 0, new double[classCount]);
    }

    /// <summary>
    /// Largest remainder (Hamilton): floors of the exact shares, then +1 to the largest fractions.
    /// Ties go to the lower F1 (weights can round equal in floating point), then the earlier class.
    /// </summary>
    private static int[] Distribute(int amount, double[] weights, int baseline, IReadOnlyList<double> f1)
    {
        var sum = weights.Sum();
        var exact = weights.Select(w => amount * w / sum).ToArray();
        var counts = exact.Select(x => (int)Math.Floor(x)).ToArray();
        var left = amount - counts.Sum();
        foreach (var c in Enumerable.Range(0, weights.Length).OrderByDescending(c => exact[c] - counts[c]).ThenBy(c => f1[c]).ThenBy(c => c).Take(left))
            counts[c]++;
        for (var c = 0; c < counts.Length; c++) counts[c] += baseline;
        return counts;
    }
}
