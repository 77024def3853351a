using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>Starts real emulators (Kestrel on 127.0.0.1:0) over the shipped demo data, and builds real prompts.</summary>
internal static class Emulators
{
    public const string Key = "test-key-123";

    /// <summary>The teacher policy's filters off (every pool text is acceptable): for tests about other properties.</summary>
    public static readonly (string Key, string? Value)[] PermissivePolicy =
        [("Emulator:Policy:MinAgreement", "0"), ("Emulator:Policy:MaxPairCosine", "1")];
    public const string Model = "gpt-4o-mini";

    public static string DemoFile(string name) => Path.Combine(SharedData.DemoDataDirectory, "news", name);

    public static Dictionary<string, string?> Settings(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Emulator:ApiKey"] = Key,
            ["Emulator:PoolPath"] = DemoFile("pool.jsonl"),
            ["Emulator:Seed"] = "7",
        };
        foreach (var (k, v) in extra) settings[k] = v;
        return settings;
    }

    public static Task<TeacherEmulatorServer> StartAsync(params (string Key, string? Value)[] extra) =>
        TeacherEmulatorServer.StartAsync(Settings(extra));

    public static LabelSet Labels => LabelSet.FromLines(File.ReadAllText(DemoFile("labels.txt")));

    public static Dataset Read(string name)
    {
        using var s = File.OpenRead(DemoFile(name));
        return DatasetReader.ReadJsonl(s, name, new DatasetReadOptions { Labels = Labels });
    }

    /// <summary>A real round prompt from Pgkd.Core: report, hard negatives from seed_val, and the given allocation.</summary>
    public static TeacherPrompt Prompt(int[] allocation, IReadOnlyList<HardNegative>? hard = null, bool includeHardNegatives = true, int round = 1)
    {
        var labels = Labels;
        var report = new ValidationReport(32, 0.75,
            labels.Names.Select((n, i) => new ClassMetrics(n, 0.8 - 0.1 * i, 0.7, 0.75 - 0.1 * i, 8)).ToArray(),
            0.7, 0.7, labels.Names.Select(_ => (IReadOnlyList<int>)new int[labels.Count]).ToArray(), 0.6, 0.05);
        var input = new TeacherPromptInput
        {
            Labels = labels,
            TaskDescription = "Classify short news texts by topic.",
            Allocation = allocation,
            FewShotPool = Read("seed_train.jsonl").Examples,
            Report = report,
            Selection = new HardNegativeSelection(hard ?? [], [], []),
            Round = round,
            Seed = 3,
        };
        return TeacherPromptBuilder.Build(input, new TeacherPromptOptions { IncludeHardNegatives = includeHardNegatives });
    }

    public static HttpClient Http(TeacherEmulatorServer server, string? key = Key)
    {
        var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        if (key is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    public static StringContent Body(TeacherPrompt prompt, string? user = null, string model = Model) =>
        Body([("system", prompt.System), ("user", prompt.User)], user, model);

    public static StringContent Body((string Role, string Content)[] messages, string? user = null, string? model = Model)
    {
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
            ["response_format"] = new JsonObject { ["type"] = "json_object" },
        };
        if (model is not null) body["model"] = model;
        if (user is not null) body["user"] = user;
        return new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; the deadline is generous, as a loaded machine is slow, not wrong.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, int timeoutSeconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the condition did not hold within {timeoutSeconds} s");
            await Task.Delay(10);
        }
    }

    /// <summary>POSTs to the OpenAI route and returns the parsed samples of a 200 reply.</summary>
    public static async Task<List<LabeledExample>> AskAsync(HttpClient http, TeacherPrompt prompt, string runId)
    {
        using var response = await http.PostAsync("v1/chat/completions", Body(prompt, runId));
        Assert.Equal(200, (int)response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var content = doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        using var reply = JsonDocument.Parse(content);
        return reply.RootElement.GetProperty("samples").EnumerateArray()
            .Select(s => new LabeledExample(s.GetProperty("text").GetString()!, s.GetProperty("label").GetString()!))
            .ToList();
    }
}
