using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;
using Pgkd.TeacherEmulator;
using Xunit.Abstractions;

namespace Pgkd.Generator.Tests;

/// <summary>
/// Issue 22 point 5, measured: the share of prompt tokens a run's requests can have served from the provider's cache,
/// with the prompt's unchanging part first. One round of 64 samples in requests of 16 (4 requests), prompts built from the
/// dataset's own labels and seed data as the generator builds them, sent to the emulator (whose prompt cache follows the
/// real services' rules: 1,024 tokens at least, steps of 128), priced as gpt-4o-mini. On the shared data when present
/// (../shared/data), visibly skipped otherwise.
/// </summary>
public sealed class PromptCachingMeasurement(ITestOutputHelper output)
{
    [Theory]
    [InlineData("agnews", true)]
    [InlineData("banking77", true)]
    [InlineData("agnews", false)]
    [InlineData("banking77", false)]
    public async Task CachedShareOfPromptTokens_InARound(string dataset, bool oneFewShotDrawPerRun)
    {
        var folder = SharedData.FindDataset(dataset);
        if (folder is null)
        {
            output.WriteLine($"SKIPPED (visibly): ../shared/data/{dataset} is absent here.");
            return;
        }
        var labels = LabelSet.FromLines(File.ReadAllText(Path.Combine(folder, "labels.txt")));
        Dataset Read(string name)
        {
            using var s = File.OpenRead(Path.Combine(folder, name));
            return DatasetReader.ReadJsonl(s, name, new DatasetReadOptions { Labels = labels });
        }
        var seedTrain = Read("seed_train.jsonl");
        await using var server = await TestTeacher.StartEmulatorAsync();
        var options = TestTeacher.FastOptions(o => o.Prices["gpt-4o-mini"] = new TokenPrice(0.15m, 0.60m) { CachedInputPerMillion = 0.075m });
        var client = TestTeacher.Client(server, options: options);
        var ledger = new TeacherUsageLedger(TeacherBudget.Unlimited);
        var allocation = ClassAllocation.Balanced(64, labels.Count);
        var calls = new List<TeacherCallRecord>();
        foreach (var (batch, b) in RoundShardGenerator.SplitAllocation(allocation, 16).Select((x, i) => (x, i)))
        {
            var input = new TeacherPromptInput
            {
                Labels = labels, TaskDescription = "Classify each text into exactly one of the labels.", Allocation = batch,
                FewShotPool = seedTrain.Examples, Round = 1, Seed = 1000 + b, FewShotSeed = oneFewShotDrawPerRun ? 42 : null,
            };
            var result = await client.GenerateAsync(TeacherPromptBuilder.Build(input), new TeacherReplyContext { Labels = labels }, new($"run-cache-{dataset}-{oneFewShotDrawPerRun}", 1), ledger);
            calls.AddRange(result.Calls);
        }
        var prompt = calls.Sum(c => c.PromptTokens);
        var cached = calls.Sum(c => c.CachedPromptTokens);
        var cost = calls.Sum(c => c.CostUsd);
        var saved = calls.Sum(c => c.CachedSavingsUsd);
        output.WriteLine($"{dataset} ({(oneFewShotDrawPerRun ? "few-shot drawn once per run" : "few-shot drawn per request, as before")}): {labels.Count} labels, {calls.Count} requests, {prompt:N0} prompt tokens of which {cached:N0} cached " +
                         $"({100.0 * cached / prompt:0.0}%), first request {calls[0].PromptTokens:N0} tokens; cost ${cost:0.000000}, saved ${saved:0.000000} " +
                         $"({100 * saved / (cost + saved):0.0}% of the uncached price)");
        Assert.Equal(0, calls[0].CachedPromptTokens);
        Assert.All(calls, c => Assert.True(c.CachedPromptTokens <= c.PromptTokens));
    }
}
