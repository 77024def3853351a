using System.Text.Json.Nodes;
using Pgkd.Core.Data;

namespace Pgkd.Cli;

/// <summary>
/// Builds <c>POST /v1/runs</c> from local files: labels.txt (one label a line, optionally <c>name&lt;TAB&gt;description</c>)
/// and datasets as JSONL (<c>{"text","label"}</c> a line) or CSV (header with text and label), chosen by extension.
/// The files are read with the same Core readers the gateway uses, so a bad line is reported here with its file and
/// line number before anything is sent.
/// </summary>
public static class RunRequestBuilder
{
    /// <param name="Pool">Labeled texts the local teacher emulator answers from for this run (its own pool otherwise).</param>
    public sealed record Files(string Train, string Validation, string? Test, string Labels, string? Pool = null);

    public static JsonObject Build(Files files, JsonObject configuration, JsonObject student, string? task)
    {
        var labels = ReadLabels(files.Labels);
        var problems = new List<string>();
        var train = ReadDataset(files.Train, labels, problems);
        var validation = ReadDataset(files.Validation, labels, problems);
        var test = files.Test is null ? null : ReadDataset(files.Test, labels, problems);
        var pool = files.Pool is null ? null : ReadDataset(files.Pool, labels, problems);
        if (problems.Count > 0)
            throw new CliException(ExitCodes.Rejected, $"{problems.Count} problem(s) in the data files; nothing was sent", problems);

        var request = new JsonObject
        {
            ["labels"] = new JsonArray(labels.Labels.Select(l => (JsonNode)(l.Description is null
                ? new JsonObject { ["name"] = l.Name }
                : new JsonObject { ["name"] = l.Name, ["description"] = l.Description })).ToArray()),
            ["train"] = Examples(train!),
            ["validation"] = Examples(validation!),
            ["configuration"] = configuration,
            ["student"] = student,
        };
        if (test is not null) request["test"] = Examples(test);
        if (pool is not null) request["pool"] = Examples(pool);
        if (task is not null) request["task"] = task;
        return request;
    }

    public static LabelSet ReadLabels(string path)
    {
        var content = ReadText(path, "labels");
        try
        {
            var labels = LabelSet.FromLines(content);
            return labels.Count >= 2 ? labels
                : throw new CliException(ExitCodes.Rejected, $"{path}: a classifier needs at least 2 labels, found {labels.Count}");
        }
        catch (ArgumentException e)
        {
            throw new CliException(ExitCodes.Rejected, $"{path}: {e.Message.Split(" (Parameter")[0]}");
        }
    }

    private static Dataset? ReadDataset(string path, LabelSet labels, List<string> problems)
    {
        if (!File.Exists(path)) throw new CliException(ExitCodes.Usage, $"{path}: no such file");
        var options = new DatasetReadOptions { Labels = labels };
        try
        {
            using var stream = File.OpenRead(path);
            return path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)
                ? DatasetReader.ReadCsv(stream, path, options)
                : DatasetReader.ReadJsonl(stream, path, options);
        }
        catch (DatasetFormatException e)
        {
            problems.AddRange(e.Errors.Select(error => error.ToString()));
            if (e.MoreErrorsOmitted) problems.Add($"{path}: more errors omitted");
            return null;
        }
        catch (IOException e)
        {
            throw new CliException(ExitCodes.Usage, $"{path}: cannot read ({e.Message})");
        }
    }

    private static JsonArray Examples(Dataset dataset) =>
        new(dataset.Examples.Select(e => (JsonNode)new JsonObject { ["text"] = e.Text, ["label"] = e.Label }).ToArray());

    private static string ReadText(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(ExitCodes.Usage, $"cannot read the {what} file {path}: {(e is FileNotFoundException ? "no such file" : e.Message)}");
        }
    }
}
