using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Teacher;
using Pgkd.TeacherEmulator;

namespace Pgkd.Generator.Tests;

/// <summary>Real emulators on loopback ports, teacher clients pointed at them, and real Core prompts over the demo data.</summary>
internal static class TestTeacher
{
    public const string Key = "generator-test-key";
    public const string Model = "gpt-4o-mini";

    public static string DemoFile(string name) => Path.Combine(SharedData.DemoDataDirectory, "news", name);

    public static Task<TeacherEmulatorServer> StartEmulatorAsync(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Emulator:ApiKey"] = Key,
            ["Emulator:PoolPath"] = DemoFile("pool.jsonl"),
            ["Emulator:Seed"] = "5",
        };
        foreach (var (k, v) in extra) settings[k] = v;
        return TeacherEmulatorServer.StartAsync(settings);
    }

    /// <summary>The connection string for an emulator, on its Azure route or its OpenAI route.</summary>
    public static string ConnectionString(TeacherEmulatorServer server, TeacherKind kind, string key = Key, string deployment = Model) =>
        kind == TeacherKind.AzureOpenAI
            ? $"Endpoint={server.Address};Deployment={deployment};Key={key};Kind=AzureOpenAI"
            : $"Endpoint={server.OpenAiEndpoint};Model={deployment};Key={key};Kind=OpenAI";

    /// <summary>Options with millisecond backoff so retry tests take no real time.</summary>
    public static TeacherClientOptions FastOptions(Action<TeacherClientOptions>? change = null)
    {
        var options = new TeacherClientOptions
        {
            MaxRetries = 4,
            BaseDelay = TimeSpan.FromMilliseconds(5),
            MaxDelay = TimeSpan.FromMilliseconds(50),
            MaxRetryAfter = TimeSpan.FromSeconds(2),
            RequestTimeout = TimeSpan.FromSeconds(10),
            JitterSeed = 1,
        };
        change?.Invoke(options);
        return options;
    }

    public static TeacherClient Client(TeacherEmulatorServer server, TeacherKind kind = TeacherKind.OpenAI, TeacherClientOptions? options = null,
        string key = Key, string deployment = Model) =>
        new(TeacherConnection.Parse(ConnectionString(server, kind, key, deployment)), options ?? FastOptions());

    /// <summary>Polls <paramref name="condition"/> until it holds; a generous deadline, since a loaded machine is slow, not wrong.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, int timeoutSeconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the condition did not hold within {timeoutSeconds} s");
            await Task.Delay(10);
        }
    }

    public static LabelSet Labels => LabelSet.FromLines(File.ReadAllText(DemoFile("labels.txt")));

    public static Dataset Read(string name)
    {
        using var s = File.OpenRead(DemoFile(name));
        return DatasetReader.ReadJsonl(s, name, new DatasetReadOptions { Labels = Labels });
    }

    /// <summary>One round's prompt input as the pipeline would build it: report, hard negatives from validation, the allocation.</summary>
    public static TeacherPromptInput RoundInput(int[] allocation, int round = 1)
    {
        var labels = Labels;
        var val = Read("seed_val.jsonl").Examples;
        var report = new ValidationReport(val.Count, 0.72,
            labels.Names.Select((n, i) => new ClassMetrics(n, 0.8, 0.7, 0.9 - 0.1 * i, 8)).ToArray(),
            0.75, 0.75, labels.Names.Select(_ => (IReadOnlyList<int>)new int[labels.Count]).ToArray(), 0.7, 0.05);
        var hard = val.Where(e => e.Label is "Business" or "Sci/Tech").Take(4)
            .Select(e => new HardNegative(e.Text, e.Label, e.Label == "Business" ? "World" : "Business", 0.91)).ToArray();
        return new TeacherPromptInput
        {
            Labels = labels,
            TaskDescription = "Classify short news texts by topic.",
            Allocation = allocation,
            FewShotPool = Read("seed_train.jsonl").Examples,
            Report = report,
            Selection = new HardNegativeSelection(hard, [], []),
            Round = round,
            Seed = 42,
        };
    }

    public static TeacherReplyContext ReplyContext()
    {
        var heldOut = Read("seed_val.jsonl").TextHashes();
        heldOut.UnionWith(Read("test.jsonl").TextHashes());
        return new TeacherReplyContext { Labels = Labels, TrainingHashes = Read("seed_train.jsonl").TextHashes(), HeldOutHashes = heldOut };
    }

    public static TeacherPrompt Prompt(int[] allocation) => TeacherPromptBuilder.Build(RoundInput(allocation));
}
