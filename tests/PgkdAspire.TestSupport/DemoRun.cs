using System.Text.Json.Nodes;

namespace PgkdAspire.TestSupport;

/// <summary>
/// The run the functional and reliability tests start: the project's demo dataset, head mode, a few small rounds.
/// One definition, so both suites measure the same run.
/// </summary>
public static class DemoRun
{
    /// <summary>A file of the demo dataset shipped with the teacher emulator.</summary>
    public static string Data(string file) => Repository.Path("src", "Pgkd.TeacherEmulator", "DemoData", file);

    /// <summary>The body of <c>POST /v1/runs</c> for the demo run.</summary>
    public static async Task<JsonObject> RequestAsync(int seed = 7, int maxRounds = 2, int samplesPerRound = 16) => new()
    {
        // labels.txt: one label a line, "name<TAB>description".
        ["labels"] = new JsonArray(File.ReadAllLines(Data("labels.txt")).Where(l => l.Trim().Length > 0)
            .Select(l => l.Split('\t', 2))
            .Select(p => (JsonNode)new JsonObject { ["name"] = p[0].Trim(), ["description"] = p.Length > 1 ? p[1].Trim() : null })
            .ToArray()),
        ["train"] = await File.ReadAllTextAsync(Data("seed_train.jsonl")),
        ["validation"] = await File.ReadAllTextAsync(Data("seed_val.jsonl")),
        ["test"] = await File.ReadAllTextAsync(Data("test.jsonl")),
        // The demo's own pool: the emulator's default pool (AG News where ../shared/data has it) knows none of its labels.
        ["pool"] = await File.ReadAllTextAsync(Data("pool.jsonl")),
        // The split given on purpose: the demo's 60 validation texts alone would not split by default, and the tests
        // cover the feedback/selection path end to end.
        ["configuration"] = new JsonObject { ["maxRounds"] = maxRounds, ["samplesPerRound"] = samplesPerRound, ["seed"] = seed, ["selectionShare"] = 0.5 },
        ["student"] = new JsonObject { ["mode"] = "head", ["epochsPerRound"] = 15 },
    };
}
