using System.Runtime.InteropServices;
using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Issue 19.1: what a long-lived trainer keeps between jobs is bounded.</summary>
public sealed class MemoryBoundsTests
{
    [Fact]
    public void The_embedding_cache_keeps_at_most_its_capacity_and_drops_the_oldest_first()
    {
        var cache = new SentenceEmbeddingCache(capacity: 3);
        var keys = Enumerable.Range(0, 5).Select(i => SentenceEmbeddingCache.Key("enc", 64, $"text {i}")).ToArray();
        foreach (var (key, i) in keys.Select((k, i) => (k, i))) cache.Set(key, [i]);
        cache.Set(keys[4], [40]); // replacing an entry adds nothing

        Assert.Equal(3, cache.Count);
        Assert.False(cache.TryGet(keys[0], out _));
        Assert.False(cache.TryGet(keys[1], out _));
        Assert.True(cache.TryGet(keys[2], out var v2) && v2[0] == 2);
        Assert.True(cache.TryGet(keys[4], out var v4) && v4[0] == 40);
        Assert.Throws<ArgumentOutOfRangeException>(() => new SentenceEmbeddingCache(capacity: 0));
    }

    [Fact]
    public void Releasing_after_a_job_hands_freed_native_memory_back()
    {
        ProcessMemory.Configure();
        ProcessMemory.Release();
        var before = ProcessMemory.ResidentBytes();
        Assert.True(before > 0);
        // What fragments glibc's heap in a training: a large block freed (glibc's default then raises its mmap threshold),
        // then 1-8 MB blocks (activations, gradients) each followed by a small allocation that outlives them.
        Marshal.FreeHGlobal(Touch(Marshal.AllocHGlobal(8 << 20), 8 << 20));
        var rng = new Random(1);
        var large = new List<nint>();
        var small = new List<nint>();
        for (var i = 0; i < 80; i++)
        {
            var size = rng.Next(1 << 20, 8 << 20);
            large.Add(Touch(Marshal.AllocHGlobal(size), size));
            small.Add(Marshal.AllocHGlobal(64));
        }
        foreach (var p in large) Marshal.FreeHGlobal(p);
        ProcessMemory.Release();
        var after = ProcessMemory.ResidentBytes();
        foreach (var p in small) Marshal.FreeHGlobal(p);
        Assert.True(after < before + (64L << 20), $"RSS {before >> 20} MiB before, {after >> 20} MiB after ~360 MB were freed");
    }

    private static nint Touch(nint block, int size)
    {
        var page = new byte[4096];
        Array.Fill(page, (byte)1);
        for (var offset = 0; offset + page.Length <= size; offset += page.Length) Marshal.Copy(page, 0, block + offset, page.Length);
        return block;
    }
}
