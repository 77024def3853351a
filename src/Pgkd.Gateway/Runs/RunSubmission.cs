using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Pgkd.Core.Data;
using Pgkd.Core.Run;
using Pgkd.Storage;

namespace Pgkd.Gateway.Runs;

/// <summary>
/// <c>POST /v1/runs</c> as JSON. Datasets come inline, either as arrays of <c>{"text","label"}</c> objects or as
/// one JSONL string; labels as names or <c>{"name","description"}</c> objects. The configuration takes
/// <see cref="RunConfiguration"/>'s fields; omitted ones keep their defaults. <c>pool</c> (optional, same forms) is the
/// run's own labeled texts for the local teacher emulator to answer from.
/// </summary>
public sealed record RunRequest(
    JsonElement Labels,
    JsonElement Train,
    JsonElement Validation,
    JsonElement? Test = null,
    RunConfiguration? Configuration = null,
    StudentSettings? Student = null,
    string? Task = null,
    JsonElement? Pool = null);

/// <summary>
/// A run that passed every check: nothing is stored before this exists. The configuration's selection share is
/// resolved; <paramref name="Pool"/> holds no text of the train, validation or test data.
/// </summary>
public sealed record RunSubmission(LabelSet Labels, Dataset Train, Dataset Validation, Dataset? Test, RunConfiguration Configuration,
    StudentSettings Student, string TaskDescription, ValidationParts ValidationParts, Dataset? Pool = null);

/// <summary>Every problem with a submission, each naming the field and, for data, the line.</summary>
public sealed class RunSubmissionException(IReadOnlyList<string> problems)
    : Exception(string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

public static class RunSubmissionParser
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>
    /// Checks labels, every dataset (line numbers are 1-based positions in the array or JSONL text), that every
    /// label has training examples, that validation is not empty, and the configuration. Throws with all problems.
    /// </summary>
    public static RunSubmission Parse(RunRequest request)
    {
        var problems = new List<string>();
        var labels = ParseLabels(request.Labels, problems);
        var config = request.Configuration ?? RunConfiguration.Default;
        if (labels is null) throw new RunSubmissionException(problems);

        var maxText = config.MaxTextLength > 0 ? config.MaxTextLength : RunConfiguration.Default.MaxTextLength;
        var train = ReadDataset(request.Train, "train", labels, maxText, problems);
        var validation = ReadDataset(request.Validation, "validation", labels, maxText, problems);
        var test = request.Test is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } t
            ? ReadDataset(t, "test", labels, maxText, problems)
            : null;
        var pool = request.Pool is { ValueKind: not (JsonValueKind.Null or JsonValueKind.Undefined) } p
            ? ReadDataset(p, "pool", labels, maxText, problems)
            : null;
        if (pool is { Count: 0 }) problems.Add("pool: the pool is empty; leave it out to use the teacher emulator's own pool");
        if (validation is not null) config = config.WithSelectionShareFor(validation.Count);

        if (train is not null)
        {
            var counts = train.CountByLabel(labels);
            for (var i = 0; i < labels.Count; i++)
                if (counts[i] == 0) problems.Add($"train: label \"{labels[i]}\" has no examples");
        }
        if (validation is { Count: 0 }) problems.Add("validation: the validation set is empty; early stopping and hard negatives need it");
        ValidationParts? parts = null;
        if (validation is { Count: > 0 } && config.Validate(labels.Count).Count == 0)
        {
            try
            {
                parts = config.SplitValidation(validation);
            }
            catch (ArgumentException e)
            {
                problems.Add($"validation: {AsJsonName(e.Message)}");
            }
        }
        if (train is { Count: 0 }) problems.Add("train: the training set is empty");
        problems.AddRange(config.Validate(labels.Count).Select(p => $"configuration: {AsJsonName(p)}"));
        var student = request.Student ?? new StudentSettings();
        problems.AddRange(student.Validate().Select(p => $"student: {AsJsonName(p)}"));

        var task = string.IsNullOrWhiteSpace(request.Task) ? RunManifest.DefaultTaskDescription : request.Task.Trim();
        if (task.Length > 1000) problems.Add($"task: at most 1000 characters, was {task.Length}");

        if (problems.Count > 0) throw new RunSubmissionException(problems);
        // The teacher must never hand back the run's own data: its seed texts would be duplicates, and validation or
        // test texts would leak held-out data (the generator would reject them anyway, wasting the round's samples).
        if (pool is not null)
        {
            var own = train!.TextHashes();
            own.UnionWith(validation!.TextHashes());
            if (test is not null) own.UnionWith(test.TextHashes());
            pool = pool.Without(own);
        }
        return new RunSubmission(labels, train!, validation!, test, config, student, task, parts!, pool);
    }

    /// <summary>"MaxRounds must be ..." becomes "maxRounds must be ...": the field as the request spells it.</summary>
    private static string AsJsonName(string problem)
    {
        var end = problem.IndexOf(' ');
        var field = end < 0 ? problem : problem[..end];
        return field.All(char.IsAsciiLetterOrDigit) ? JsonNamingPolicy.CamelCase.ConvertName(field) + problem[field.Length..] : problem;
    }

    private static LabelSet? ParseLabels(JsonElement element, List<string> problems)
    {
        if (element.ValueKind != JsonValueKind.Array)
        {
            problems.Add("labels: must be an array of names or {\"name\",\"description\"} objects");
            return null;
        }
        var definitions = new List<LabelDefinition>();
        var index = 0;
        foreach (var item in element.EnumerateArray())
        {
            index++;
            switch (item.ValueKind)
            {
                case JsonValueKind.String:
                    definitions.Add(new LabelDefinition(item.GetString()!));
                    break;
                case JsonValueKind.Object when item.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String:
                    definitions.Add(new LabelDefinition(name.GetString()!,
                        item.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null));
                    break;
                default:
                    problems.Add($"labels[{index}]: expected a name or an object with a string \"name\"");
                    return null;
            }
        }
        if (definitions.Count < 2)
        {
            problems.Add($"labels: a classifier needs at least 2 labels, got {definitions.Count}");
            return null;
        }
        try
        {
            return new LabelSet(definitions);
        }
        catch (ArgumentException e)
        {
            problems.Add($"labels: {e.Message.Split(" (Parameter")[0]}");
            return null;
        }
    }

    private static Dataset? ReadDataset(JsonElement element, string source, LabelSet labels, int maxTextLength, List<string> problems)
    {
        string jsonl;
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                jsonl = element.GetString()!;
                break;
            case JsonValueKind.Array:
                // One array item per line, so the reader's line numbers are the items' positions.
                var builder = new StringBuilder();
                foreach (var item in element.EnumerateArray()) builder.Append(item.GetRawText().ReplaceLineEndings(" ")).Append('\n');
                jsonl = builder.ToString();
                break;
            default:
                problems.Add($"{source}: must be an array of {{\"text\",\"label\"}} objects or a JSONL string");
                return null;
        }
        try
        {
            using var stream = new MemoryStream(Encoding.UTF8.GetBytes(jsonl));
            return DatasetReader.ReadJsonl(stream, source,
                new DatasetReadOptions { Labels = labels, MaxTextLength = maxTextLength, AllowEmpty = true });
        }
        catch (DatasetFormatException e)
        {
            problems.AddRange(e.Errors.Select(error => error.ToString()));
            if (e.MoreErrorsOmitted) problems.Add($"{source}: more errors omitted");
            return null;
        }
    }
}
