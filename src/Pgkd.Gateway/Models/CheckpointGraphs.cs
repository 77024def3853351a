using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Gateway.Models;

/// <summary>
/// A stored checkpoint's complete serving graph (model.onnx or model.int8.onnx) as a local file, for serving and for
/// download: the stored file where there is one; for a head-only checkpoint the graph composed from the pretrained encoder the
/// gateway ships and the stored head.onnx; for a complete checkpoint from before int8 export its model.onnx quantized. The
/// result is kept in a local folder per checkpoint (checkpoints are written once, so it never goes stale), and only the
/// most recently used <see cref="MaxLocalCopies"/> are kept: a gateway that lived through hundreds of runs had kept a
/// ~90 MiB copy of every model it ever served and filled the disk (issue 19, the chaos scenario). A copy is only a cache:
/// a loaded model runs from memory, and a deleted copy is fetched again when asked for.
/// </summary>
public static class CheckpointGraphs
{
    /// <summary>Local copies kept (the served model's among them: the latest used); the least recently used go first.</summary>
    public static int MaxLocalCopies { get; set; } = 8;

    private static readonly string Shared = Path.Combine(Path.GetTempPath(), "pgkd-gateway-models");

    /// <summary>
    /// This process's copies: a folder of its own, so that gateway replicas on one machine never delete a copy another
    /// is writing. Folders of processes that are gone are removed at the first use.
    /// </summary>
    public static string Root { get; } = Path.Combine(Shared, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static readonly Lazy<bool> OrphansRemoved = new(RemoveOrphans);

    /// <summary>The local folder of one checkpoint's files.</summary>
    public static string LocalFolder(Guid runId, int round) => Path.Combine(Root, $"{runId:N}-{round}");

    /// <summary>Makes <c>metadata.json</c> and the graph of <paramref name="precision"/> present in <see cref="LocalFolder"/>; returns the folder.</summary>
    public static async Task<string> EnsureLocalAsync(RunStore store, Guid runId, int round, StudentPrecision precision, ILogger logger,
        CancellationToken cancellationToken)
    {
        _ = OrphansRemoved.Value;
        var folder = RunBlobLayout.CheckpointFolder(runId, round);
        var local = LocalFolder(runId, round);
        Directory.CreateDirectory(local);
        // Used now: the newest, so the trim below and concurrent ones leave it alone.
        Directory.SetLastWriteTimeUtc(local, DateTime.UtcNow);
        try
        {
            return await EnsureFilesAsync();
        }
        finally
        {
            TrimLocalCopies(logger);
        }

        async Task<string> EnsureFilesAsync()
        {
            await FetchAsync(StudentCheckpoint.MetadataFileName);
            var graph = StudentCheckpoint.OnnxFileNameFor(precision);
            if (File.Exists(Path.Combine(local, graph))) return local;
            if (await store.ExistsAsync(folder + graph, cancellationToken))
            {
                await FetchAsync(graph);
                return local;
            }
            if (StudentCheckpoint.ReadMetadata(local).IsHeadOnly)
            {
                logger.LogInformation("{Folder} is head-only; composing its {Graph} from the pretrained encoder and head.onnx", folder, graph);
                await FetchAsync(StudentCheckpoint.HeadFileName);
                await WriteAsync(graph, () => StudentCheckpoint.ServingGraph(local, precision));
            }
            else
            {
                // A checkpoint from before int8 export: quantize its fp32 graph here (the same pure rewrite the trainer runs).
                logger.LogInformation("{Folder} has no {Graph}; quantizing its {Fp32} for serving", folder, graph, StudentCheckpoint.OnnxFileName);
                await FetchAsync(StudentCheckpoint.OnnxFileName);
                await WriteAsync(graph, () => StudentQuantizer.QuantizeDynamicInt8(File.ReadAllBytes(Path.Combine(local, StudentCheckpoint.OnnxFileName))));
            }
            return local;
        }

        async Task FetchAsync(string file)
        {
            if (File.Exists(Path.Combine(local, file))) return;
            var bytes = (await store.ReadAsync(folder + file, cancellationToken)).ToArray();
            await WriteAsync(file, () => bytes);
        }

        // Atomically: a concurrent request for the same checkpoint writes the same bytes, and a reader never sees half a file.
        async Task WriteAsync(string file, Func<byte[]> make)
        {
            var path = Path.Combine(local, file);
            var tmp = $"{path}.{Guid.NewGuid():N}.tmp";
            await File.WriteAllBytesAsync(tmp, await Task.Run(make, cancellationToken), cancellationToken);
            File.Move(tmp, path, overwrite: true);
        }
    }

    /// <summary>Deletes this process's least recently used copies beyond <see cref="MaxLocalCopies"/>.</summary>
    public static void TrimLocalCopies(ILogger logger)
    {
        try
        {
            var stale = new DirectoryInfo(Root).GetDirectories()
                .OrderByDescending(d => d.LastWriteTimeUtc).ThenBy(d => d.Name, StringComparer.Ordinal)
                .Skip(Math.Max(1, MaxLocalCopies));
            foreach (var old in stale)
            {
                old.Delete(recursive: true);
                logger.LogInformation("Deleted the local copy {Folder} (kept the {Count} most recently used)", old.Name, MaxLocalCopies);
            }
        }
        catch (IOException e)
        {
            logger.LogWarning(e, "Could not trim the local model copies in {Root}; trying again at the next load", Root);
        }
    }

    /// <summary>Copies left by gateway processes that no longer run (a crash, a kill, or the layout before per-process folders).</summary>
    private static bool RemoveOrphans()
    {
        if (!Directory.Exists(Shared)) return true;
        foreach (var folder in new DirectoryInfo(Shared).GetDirectories())
        {
            if (int.TryParse(folder.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) && IsRunning(pid))
                continue;
            try
            {
                folder.Delete(recursive: true);
            }
            catch (IOException)
            {
                // Another gateway removing it at the same moment, or a file in use: left for the next start.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return true;

        static bool IsRunning(int pid)
        {
            try
            {
                using var process = System.Diagnostics.Process.GetProcessById(pid);
                return !process.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }
    }
}
