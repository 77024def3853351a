namespace Pgkd.Student;

/// <summary>
/// Class-balanced epochs (<see cref="BatchSampling.ClassBalanced"/>): every class that has examples gets an equal share of an
/// epoch (the remainder to classes drawn at random), dealt from the class's own deck, which is refilled with the class's
/// examples in a fresh random order whenever it runs out. Over epochs every example is seen; a class with few examples repeats
/// them, and one with many is spread over several epochs, so a round whose teacher data floods a few classes still trains the
/// others as often.
/// </summary>
internal sealed class ClassBalancedEpochs
{
    private readonly int[][] _members;
    private readonly Queue<int>[] _decks;
    private readonly Random _rng;

    public ClassBalancedEpochs(IReadOnlyList<long> targets, Random rng)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Count == 0) throw new ArgumentException("No examples.", nameof(targets));
        _members = Enumerable.Range(0, targets.Count).GroupBy(i => targets[i]).OrderBy(g => g.Key).Select(g => g.ToArray()).ToArray();
        _decks = _members.Select(_ => new Queue<int>()).ToArray();
        _rng = rng;
    }

    /// <summary>The next epoch: <paramref name="size"/> example indices in random order.</summary>
    public int[] Next(int size)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var classes = _members.Length;
        var share = Enumerable.Repeat(size / classes, classes).ToArray();
        var lucky = Enumerable.Range(0, classes).ToArray();
        _rng.Shuffle(lucky);
        for (var k = 0; k < size % classes; k++) share[lucky[k]]++;
        var epoch = new int[size];
        var n = 0;
        for (var c = 0; c < classes; c++)
            for (var j = 0; j < share[c]; j++)
            {
                if (_decks[c].Count == 0)
                {
                    var deck = _members[c].ToArray();
                    _rng.Shuffle(deck);
                    foreach (var i in deck) _decks[c].Enqueue(i);
                }
                epoch[n++] = _decks[c].Dequeue();
            }
        _rng.Shuffle(epoch);
        return epoch;
    }
}
