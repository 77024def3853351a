using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Pgkd.Student;

/// <summary>
/// Head-mode sentence embeddings, keyed by (encoder weights fingerprint, max length, SHA-256 of the text), so a
/// later round re-embeds only the new texts. In memory; keep one per long-lived trainer. Thread-safe.
/// Bounded (issue 19.1): a trainer that lives for days sees every run's texts, and each full-mode checkpoint scored through
/// the cache has an encoder of its own; past <see cref="Capacity"/> vectors the oldest entries go first.
/// </summary>
public sealed class SentenceEmbeddingCache(int capacity = SentenceEmbeddingCache.DefaultCapacity)
{
    /// <summary>200,000 vectors of 384 floats: about 330 MB with their keys; a run's data is a few thousand texts.</summary>
    public const int DefaultCapacity = 200_000;

    private readonly ConcurrentDictionary<string, float[]> _vectors = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _insertionOrder = new();
    private long _hits, _misses;

    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "at least 1");

    public int Count => _vectors.Count;

    public long Hits => Interlocked.Read(ref _hits);

    public long Misses => Interlocked.Read(ref _misses);

    public void Clear()
    {
        _vectors.Clear();
        _insertionOrder.Clear();
    }

    internal static string Key(string encoderFingerprint, int maxLength, string text) =>
        $"{encoderFingerprint}:{maxLength}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))}";

    internal bool TryGet(string key, out float[] vector)
    {
        var found = _vectors.TryGetValue(key, out vector!);
        Interlocked.Increment(ref found ? ref _hits : ref _misses);
        return found;
    }

    internal void Set(string key, float[] vector)
    {
        if (_vectors.TryAdd(key, vector)) _insertionOrder.Enqueue(key);
        else _vectors[key] = vector;
        while (_vectors.Count > Capacity && _insertionOrder.TryDequeue(out var oldest)) _vectors.TryRemove(oldest, out _);
    }

    internal IEnumerable<float[]> Vectors => _vectors.Values;
}
