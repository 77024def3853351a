using Microsoft.AspNetCore.Http.HttpResults;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Gateway.Models;

/// <summary>
/// Download what it takes to run a completed run's best student elsewhere (<c>pgkd export</c>): the complete ONNX model
/// (a head-only checkpoint's composed from the pretrained encoder and its head, <see cref="CheckpointGraphs"/>) and
/// its metadata from the best checkpoint, the labels in the model's output order, and the tokenizer's vocabulary
/// (the pretrained MiniLM's: the student never changes it).
/// </summary>
public static class ModelFileEndpoints
{
    public const string LabelsFile = "labels.txt";
    public const string VocabularyFile = "vocab.txt";

    /// <summary>The files one can ask for, in the order an export writes them.</summary>
    public static readonly IReadOnlyList<string> Files =
        [StudentCheckpoint.OnnxFileName, StudentCheckpoint.Int8OnnxFileName, StudentCheckpoint.MetadataFileName, LabelsFile, VocabularyFile];

    /// <summary>Response header naming the checkpoint's round, so a client can tell which round it got.</summary>
    public const string RoundHeader = "X-Pgkd-Round";

    public static RouteGroupBuilder MapModelFiles(this RouteGroupBuilder v1)
    {
        v1.MapGet("/runs/{runId:guid}/model/{file}", DownloadAsync).WithTags("Models")
            .WithSummary("Download a file of a completed run's best model: model.onnx, model.int8.onnx, metadata.json, labels.txt or vocab.txt");
        return v1;
    }

    private static async Task<Results<FileContentHttpResult, PhysicalFileHttpResult, ProblemHttpResult>> DownloadAsync(
        Guid runId, string file, HttpContext http, RunStore store, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        if (!Files.Contains(file, StringComparer.Ordinal))
            return Problem(404, "No such model file", $"'{file}' is not one of: {string.Join(", ", Files)}");
        var manifest = await store.ReadManifestAsync(runId, cancellationToken);
        if (manifest is null) return Problem(404, "No such run", $"run {runId} does not exist");
        if (manifest.Status != RunStatus.Completed || manifest.BestRound is not { } best)
            return Problem(409, "The run has no final model", $"run {runId} is {manifest.Status}; its best model is known once it has completed");

        http.Response.Headers[RoundHeader] = best.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return file switch
        {
            StudentCheckpoint.OnnxFileName or StudentCheckpoint.Int8OnnxFileName => TypedResults.PhysicalFile(
                Path.Combine(await CheckpointGraphs.EnsureLocalAsync(store, runId, best,
                    file == StudentCheckpoint.OnnxFileName ? StudentPrecision.Fp32 : StudentPrecision.Int8,
                    loggers.CreateLogger(typeof(ModelFileEndpoints)), cancellationToken), file),
                "application/octet-stream", file),
            LabelsFile => TypedResults.File(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', await LabelsInModelOrderAsync(store, manifest, best, cancellationToken)) + "\n"),
                "text/plain; charset=utf-8", LabelsFile),
            // Served from the gateway's own copy of the pretrained model (extracted at start-up for its tokenizer).
            VocabularyFile => TypedResults.PhysicalFile(PretrainedMiniLM.Ensure().VocabularyPath, "text/plain; charset=utf-8", VocabularyFile),
            _ => TypedResults.File((await store.ReadAsync(RunBlobLayout.CheckpointFolder(runId, best) + file, cancellationToken)).ToArray(),
                file.EndsWith(".json", StringComparison.Ordinal) ? "application/json" : "application/octet-stream", file),
        };
    }

    /// <summary>The model's own label order (from its metadata) is the truth for output indices; the manifest's is the same by construction.</summary>
    private static async Task<IReadOnlyList<string>> LabelsInModelOrderAsync(RunStore store, RunManifest manifest, int best, CancellationToken cancellationToken)
    {
        var metadata = (await store.ReadAsync(RunBlobLayout.CheckpointFolder(manifest.RunId, best) + StudentCheckpoint.MetadataFileName, cancellationToken))
            .ToObjectFromJson<StudentCheckpointMetadata>(new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web));
        return metadata?.Labels is { Count: > 0 } labels ? labels : manifest.Labels.Select(l => l.Name).ToList();
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: status);
}
