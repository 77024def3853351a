using Pgkd.NativeMemory;

namespace Pgkd.Student;

/// <summary>
/// Keeps a long-lived trainer or evaluator from holding on to memory it no longer uses (issue 19.1). Where the memory went:
/// libtorch and ONNX Runtime allocate tensors and arenas with glibc malloc. glibc raises its mmap threshold each time a
/// large mmapped block is freed (up to 32 MB), so after the first training the 1-32 MB activations and gradients come from
/// the heap arenas instead, one arena per thread that ever allocated (up to 8 per core): freed, they stay in the process as
/// fragments, and each job on another thread-pool thread fragments another arena. The .NET side adds ~100 MB blobs (model
/// files read for upload and download) in the large-object heap, which a server GC keeps committed.
/// </summary>
public static class ProcessMemory
{
    private static int _configured;

    /// <summary>
    /// Once per process, before the first training: a fixed mmap threshold of 256 KB (large tensors are mapped and go back to the
    /// system when freed) and at most 2 malloc arenas. No-op off glibc and with <c>PGKD_NATIVE_MEMORY=default</c>.
    /// </summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) == 1) return;
        GlibcHeap.MapBlocksFrom(256 * 1024);
        GlibcHeap.LimitArenas(2);
    }

    /// <summary>
    /// After a job: a full, compacting GC (the large-object heap included) and <c>malloc_trim(0)</c>, which hands every
    /// arena's free pages back to the system. A few tens of milliseconds; call it between jobs, not inside one.
    /// </summary>
    public static void Release() => GlibcHeap.CollectAndTrim(waitForFinalizers: true);

    /// <summary>The process's resident set (VmRSS) in bytes, from /proc; 0 where there is none.</summary>
    public static long ResidentBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
        }
        return 0;
    }
}
