using System.Runtime;
using System.Runtime.InteropServices;

namespace Pgkd.NativeMemory;

/// <summary>
/// glibc malloc settings and trimming for long-lived processes, and the compacting collection that goes with them. Every
/// call is a no-op off glibc (Windows, macOS, musl) and with <c>PGKD_NATIVE_MEMORY=default</c>, which leaves glibc as it is
/// (to measure the difference).
/// </summary>
public static class GlibcHeap
{
    private const int MmapThreshold = -3; // M_MMAP_THRESHOLD
    private const int ArenaMax = -8; // M_ARENA_MAX

    /// <summary>Whether the process runs on glibc and the tuning is not turned off.</summary>
    public static bool InUse => OperatingSystem.IsLinux()
                                && !RuntimeInformation.RuntimeIdentifier.StartsWith("linux-musl", StringComparison.Ordinal)
                                && Environment.GetEnvironmentVariable("PGKD_NATIVE_MEMORY") != "default";

    /// <summary>At most <paramref name="arenas"/> malloc arenas (glibc's default is 8 per core): what is freed in one is not stranded in many.</summary>
    public static void LimitArenas(int arenas) => Mallopt(ArenaMax, arenas);

    /// <summary>
    /// Blocks of <paramref name="bytes"/> and more are mapped and go back to the system when freed; setting it also turns off
    /// glibc's dynamic raise of the threshold (up to 32 MB), which otherwise moves large tensors into the arenas.
    /// </summary>
    public static void MapBlocksFrom(int bytes) => Mallopt(MmapThreshold, bytes);

    /// <summary>
    /// A full, compacting GC (the large-object heap included) that decommits what it frees, then <c>malloc_trim(0)</c>, which
    /// hands every arena's free pages back to the system. Milliseconds to tens of milliseconds: between jobs, never inside one.
    /// </summary>
    public static void CollectAndTrim(bool waitForFinalizers)
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        // Aggressive: also hands the freed regions back at once (a forced GC keeps them committed for reuse).
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (waitForFinalizers) GC.WaitForPendingFinalizers();
        if (!InUse) return;
        try
        {
            malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    private static void Mallopt(int parameter, int value)
    {
        if (!InUse) return;
        try
        {
            mallopt(parameter, value);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int mallopt(int param, int value);

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);
}
