namespace Pgkd.Core;

/// <summary>
/// A small seeded PRNG (SplitMix64). We use our own instead of <see cref="System.Random"/> because
/// System.Random(seed) is only guaranteed stable across .NET versions for its legacy algorithm, and
/// splits, samples and few-shot picks must be reproducible from a run's seed forever.
/// </summary>
public sealed class SeededRandom
{
    private ulong _state;

    public SeededRandom(ulong seed) => _state = seed;

    public SeededRandom(int seed) : this(unchecked((ulong)seed)) { }

    /// <summary>Derives an independent seed for a named sub-stream (e.g. round 3's few-shot picks).</summary>
    public static ulong Derive(ulong seed, ulong stream) => Mix(seed ^ Mix(stream + 0x9E3779B97F4A7C15UL));

    public ulong NextUInt64()
    {
        _state = unchecked(_state + 0x9E3779B97F4A7C15UL);
        return Mix(_state);
    }

    /// <summary>Uniform integer in [0, maxExclusive), without modulo bias (rejection sampling).</summary>
    public int NextInt(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        var bound = (ulong)maxExclusive;
        var limit = ulong.MaxValue - (ulong.MaxValue % bound);
        ulong x;
        do { x = NextUInt64(); } while (x >= limit);
        return (int)(x % bound);
    }

    /// <summary>Uniform double in [0, 1) from the top 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Fisher-Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>Picks min(count, items.Count) distinct items, in the order drawn.</summary>
    public List<T> Sample<T>(IReadOnlyList<T> items, int count)
    {
        var indices = Enumerable.Range(0, items.Count).ToArray();
        var take = Math.Clamp(count, 0, items.Count);
        var result = new List<T>(take);
        for (var i = 0; i < take; i++)
        {
            // Partial Fisher-Yates: only the first `take` positions are drawn.
            var j = i + NextInt(indices.Length - i);
            (indices[i], indices[j]) = (indices[j], indices[i]);
            result.Add(items[indices[i]]);
        }
        return result;
    }

    private static ulong Mix(ulong z)
    {
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return z ^ (z >> 31);
    }
}
