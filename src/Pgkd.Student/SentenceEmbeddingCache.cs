using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Pgkd.Student;

/// <summary>
/// Head-mode sentence embeddings, keyed by (encoder weights fingerprint, max length, SHA-256 of the text), so a
/// later round re-embeds only the new texts. In memory; keep one per long-lived trainer. Thread-safe.
/// </summary>
public sealed class SentenceEmbeddingCache
{
    private readonly ConcurrentDictionary<string, float[]> _vectors = new(StringComparer.Ordinal);
    private long _hits, _misses;

    public int Count => _vectors.Count;

    public long Hits => Interlocked.Read(ref _hits);

    public long Misses => Interlocked.Read(ref _misses);

    public void Clear() => _vectors.Clear();

    internal static string Key(string encoderFingerprint, int maxLength, string text) =>
        $"{encoderFingerprint}:{maxLength}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))}";

    internal bool TryGet(string key, out float[] vector)
    {
        var found = _vectors.TryGetValue(key, out vector!);
        Interlocked.Increment(ref found ? ref _hits : ref _misses);
        return found;
    }

    internal void Set(string key, float[] vector) => _vectors[key] = vector;

    internal IEnumerable<float[]> Vectors => _vectors.Values;
}
