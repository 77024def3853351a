using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Gateway.Models;

/// <summary>
/// A stored checkpoint's complete serving graph (model.onnx or model.int8.onnx) as a local file, for serving and for
/// download: the stored file where there is one; for a head-only checkpoint the graph composed from the pretrained encoder the
/// gateway ships and the stored head.onnx; for a complete checkpoint from before int8 export its model.onnx quantized. The
/// result is kept in a local folder per checkpoint (checkpoints are written once, so it never goes stale).
/// </summary>
public static class CheckpointGraphs
{
    /// <summary>The local folder of one checkpoint's files.</summary>
    public static string LocalFolder(Guid runId, int round) =>
        Path.Combine(Path.GetTempPath(), "pgkd-gateway-models", $"{runId:N}-{round}");

    /// <summary>Makes <c>metadata.json</c> and the graph of <paramref name="precision"/> present in <see cref="LocalFolder"/>; returns the folder.</summary>
    public static async Task<string> EnsureLocalAsync(RunStore store, Guid runId, int round, StudentPrecision precision, ILogger logger,
        CancellationToken cancellationToken)
    {
        var folder = RunBlobLayout.CheckpointFolder(runId, round);
        var local = LocalFolder(runId, round);
        Directory.CreateDirectory(local);
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
}
