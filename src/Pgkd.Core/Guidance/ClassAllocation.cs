namespace Pgkd.Core.Guidance;

/// <summary>The least and the most examples any one class is asked for in a round (<see cref="Cap"/> null: no cap).</summary>
public sealed record AllocationBounds(int Floor, int? Cap);

/// <summary>
/// How many new examples to ask the teacher for per class this round. Every class first gets the
/// floor; the rest is shared in proportion to (1 − F1) + smoothing, so weaker classes get more but
/// an easy class is not starved (allocation by 1 − F1 alone gave Sports 9–22 of 200 in calibration),
/// and no class gets more than the cap, its excess going to the others in the same proportions (so with
/// many classes one that fails completely cannot take the round). Largest-remainder rounding makes the
/// counts sum exactly to the total.
/// </summary>
public static class ClassAllocation
{
    public const double DefaultSmoothing = 0.1;

    /// <summary>
    /// The floor and cap a round of <paramref name="total"/> samples over <paramref name="classes"/> classes uses: the floor
    /// lowered to what fits (many classes, few samples) rather than failing the run; the cap <paramref name="capPerClass"/>
    /// (0: none), raised to what lets the total fit and never below the floor.
    /// </summary>
    public static AllocationBounds Bounds(int total, int classes, int floorPerClass, int capPerClass)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(total);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        ArgumentOutOfRangeException.ThrowIfNegative(floorPerClass);
        ArgumentOutOfRangeException.ThrowIfNegative(capPerClass);
        var floor = Math.Min(floorPerClass, total / classes);
        var evenShare = (total + classes - 1) / classes;
        return new AllocationBounds(floor, capPerClass > 0 ? Math.Max(Math.Max(capPerClass, evenShare), floor) : null);
    }

    public static int[] Allocate(int total, IReadOnlyList<double> perClassF1, int floorPerClass, double smoothing = DefaultSmoothing, int? capPerClass = null)
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

        var cap = capPerClass ?? int.MaxValue;
        if (cap < floorPerClass)
            throw new ArgumentException($"The cap of {cap} per class is below the floor of {floorPerClass}.", nameof(capPerClass));
        if ((long)cap * k < total)
            throw new ArgumentException($"A cap of {cap} per class cannot hold a total of {total} over {k} classes (at most {(long)cap * k}).", nameof(capPerClass));

        var weights = perClassF1.Select(f1 => 1 - f1 + smoothing).ToArray();
        return Distribute(total - floorPerClass * k, weights, floorPerClass, perClassF1, cap - (long)floorPerClass);
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
    /// With <paramref name="room"/>, the exact shares are capped at it by water-filling: a class whose share
    /// would pass it gets exactly the room, and the rest is shared again among the others by weight.
    /// </summary>
    private static int[] Distribute(int amount, double[] weights, int baseline, IReadOnlyList<double> f1, long room = long.MaxValue)
    {
        var exact = new double[weights.Length];
        var open = Enumerable.Range(0, weights.Length).ToList();
        double left0 = amount;
        while (open.Count > 0)
        {
            var sum = open.Sum(c => weights[c]);
            var full = open.Where(c => left0 * weights[c] / sum > room).ToList();
            if (full.Count == 0)
            {
                foreach (var c in open) exact[c] = left0 * weights[c] / sum;
                break;
            }
            foreach (var c in full)
            {
                exact[c] = room;
                left0 -= room;
                open.Remove(c);
            }
        }
        var counts = exact.Select(x => (int)Math.Floor(x)).ToArray();
        var left = amount - counts.Sum();
        // Only classes below the room take the extra ones (a capped class has no fraction left).
        foreach (var c in Enumerable.Range(0, weights.Length).Where(c => counts[c] < room)
                     .OrderByDescending(c => exact[c] - counts[c]).ThenBy(c => f1[c]).ThenBy(c => c).Take(left))
            counts[c]++;
        for (var c = 0; c < counts.Length; c++) counts[c] += baseline;
        return counts;
    }
}
