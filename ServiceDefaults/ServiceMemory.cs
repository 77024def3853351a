using Pgkd.NativeMemory;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Bounded memory for the long-lived services that hold no model: the orchestrator, the generator and the teacher emulator
/// (issue 19.1). What grew them run after run while their live data stayed flat (the orchestrator's live heap: 22 MB after 8
/// runs, against 205 MB resident): they allocate about 100 KB a second, and the workstation GC's gen0 budget is sized from
/// the CPU's last-level cache (16-25 MB for the 32 MB L3 here), so minutes pass without a collection while the garbage and
/// the native memory it holds on to (sockets, buffers) stay resident; and native allocations spread over up to 8 glibc
/// arenas per core, where what is freed stays as fragments. Measured on the orchestrator: no GC at all in the first 4
/// minutes of the memory soak, while its malloc arenas grew from 28 to 44 MiB.
/// <see cref="ConfigureNativeHeap"/> at start and <see cref="ReleaseAfterJob"/> after handled messages
/// (<c>AddAfterEachMessage</c>, so it never sits between a step and its announcement) keep what a job leaves behind from
/// accumulating. <c>Pgkd.Student.ProcessMemory</c> does the same for the trainer, evaluator and gateway (it lives in the
/// student library, which the benchmark uses without these defaults); both call <c>Pgkd.NativeMemory.GlibcHeap</c>.
/// <c>PGKD_NATIVE_MEMORY=default</c> leaves glibc as it is (to measure the difference).
/// </summary>
public static class ServiceMemory
{
    private static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(5);
    private static long _lastReleaseTicks;

    /// <summary>At most 2 malloc arenas (glibc's default is 8 per core). Call once at start; a no-op off glibc.</summary>
    public static void ConfigureNativeHeap() => GlibcHeap.LimitArenas(2);

    /// <summary>
    /// A full compacting GC that decommits what it frees, and <c>malloc_trim(0)</c> (free pages of every arena back to the
    /// system): a few milliseconds on these heaps. At most once every 5 s, so a busy service (many runs at once) pays for one
    /// collection per 5 s.
    /// </summary>
    public static void ReleaseAfterJob()
    {
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastReleaseTicks);
        if (last != 0 && now - last < MinimumInterval.TotalMilliseconds) return;
        if (Interlocked.CompareExchange(ref _lastReleaseTicks, now, last) != last) return; // another thread is releasing
        GlibcHeap.CollectAndTrim(waitForFinalizers: false);
    }
}
