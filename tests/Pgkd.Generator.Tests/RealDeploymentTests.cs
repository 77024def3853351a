using Microsoft.Extensions.Configuration;
using System.Text.Json;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>
/// Issue 22: what a real deployment does that the emulator now does too. Structured outputs and the fallback when a
/// server refuses them, the content filter on prompts and replies, replies cut off at the output limit, and prompt
/// caching with its price. Every test runs the real client against a real emulator on a loopback port.
/// </summary>
public sealed class RealDeploymentTests
{
    private static RoundShardRequest Request(string runId, int round, int[] allocation) =>
        new(runId, round, TestTeacher.RoundInput(allocation, round), TestTeacher.ReplyContext());

    private static TeacherUsageLedger Unlimited() => new(TeacherBudget.Unlimited);

    [Theory]
    [InlineData(TeacherKind.AzureOpenAI)]
    [InlineData(TeacherKind.OpenAI)]
    public async Task AsksWithTheStrictLabelEnumSchema_WhenTheServerTakesIt(TeacherKind kind)
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, kind);

        var result = await client.GenerateAsync(TestTeacher.Prompt([2, 2, 2, 2]), TestTeacher.ReplyContext(), new("run-schema", 1), Unlimited());

        Assert.Equal(TeacherResponseMode.JsonSchema, client.ResponseMode);
        Assert.Equal(TeacherResponseMode.JsonSchema, result.ResponseMode);
        Assert.Equal(8, result.Reply.Accepted.Count);
        Assert.Equal(0, server.Stats.ResponseFormatRefusals);
    }

    [Fact]
    public async Task AServerWithoutJsonSchema_IsAskedInJsonObject_FoundOutOnceAndRemembered()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:ResponseFormats:0", "json_object"), ("Emulator:ResponseFormats:1", "text"));
        var client = TestTeacher.Client(server);
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4, MaxParallelRequests = 1 });

        var shard = await generator.GenerateAsync(Request("run-fallback", 1, [4, 4, 4, 4]), Unlimited());
        var next = await generator.GenerateAsync(Request("run-fallback", 2, [4, 4, 4, 4]), Unlimited());

        Assert.Equal(16, shard.Examples.Count);
        Assert.Equal("json_object", shard.ResponseMode);
        Assert.Equal("json_object", next.ResponseMode);
        Assert.Equal(TeacherResponseMode.JsonObject, client.ResponseMode);
        Assert.Equal(1, server.Stats.ResponseFormatRefusals); // one refusal for the deployment, not one per request
        Assert.Empty(shard.RetriesByCause); // a refused format is not a retry
    }

    [Fact]
    public async Task AServerThatTakesNeither_IsAskedInPlainText()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:ResponseFormats:0", "text"));
        var client = TestTeacher.Client(server);

        var result = await client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), new("run-text", 1), Unlimited());

        Assert.Equal(TeacherResponseMode.Text, result.ResponseMode);
        Assert.Equal(4, result.Reply.Accepted.Count);
        Assert.Equal(2, server.Stats.ResponseFormatRefusals);
    }

    [Fact]
    public async Task AnOldAzureApiVersion_RefusesJsonSchema_AsAzureDoes_AndTheClientFallsBack()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        using var http = new HttpClient { BaseAddress = server.Address };
        http.DefaultRequestHeaders.Add("api-key", TestTeacher.Key);
        var body = "{\"messages\":[{\"role\":\"user\",\"content\":\"Write 2 examples.\"}],\"response_format\":{\"type\":\"json_schema\"," +
                   $"\"json_schema\":{{\"name\":\"{TeacherReplySchema.Name}\",\"strict\":true,\"schema\":{TeacherReplySchema.JsonFor(TestTeacher.Labels)}}}}}}}";
        using var old = await http.PostAsync("openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-06-01",
            new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)old.StatusCode);
        Assert.Contains("json_schema is enabled only for api versions 2024-08-01-preview and later", await old.Content.ReadAsStringAsync());
        using var current = await http.PostAsync("openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
            new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(200, (int)current.StatusCode);
    }

    [Fact]
    public async Task AForcedMode_ThatTheServerRefuses_FailsWithTheServersWords()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:ResponseFormats:0", "text"));
        var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => o.ResponseFormat = TeacherResponseFormat.JsonSchema));

        var e = await Assert.ThrowsAsync<TeacherRequestException>(() =>
            client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), new("run-forced", 1), Unlimited()));

        Assert.Equal(400, e.Status);
        Assert.True(e.RefusesResponseFormat);
        Assert.Contains("json_schema", e.Message);
        Assert.Equal(TeacherResponseMode.JsonSchema, client.ResponseMode);
    }

    [Fact]
    public async Task ContentFilter_PromptsAndRepliesAreCountedAsTheirOwnCause_NotRetried_AndTheRoundGoesOn()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:PromptFilterRate", "0.25"), ("Emulator:Faults:ContentFilterRate", "0.25"));
        var client = TestTeacher.Client(server);
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 2, MaxParallelRequests = 2 });

        var shard = await generator.GenerateAsync(Request("run-filter", 1, [8, 8, 8, 8]), Unlimited());

        var stats = server.Stats;
        Assert.True(stats.PromptsFiltered > 0 && stats.RepliesFiltered > 0,
            $"both filters should fire in 16 requests: prompts {stats.PromptsFiltered}, replies {stats.RepliesFiltered}");
        Assert.Equal(stats.PromptsFiltered, shard.PromptsFiltered);
        Assert.Equal(stats.RepliesFiltered, shard.RepliesFiltered);
        Assert.Equal(16, stats.Requests); // each request asked once: a filtered one is not asked again
        Assert.Empty(shard.RetriesByCause);
        Assert.Equal(0, shard.RepairRequests);
        Assert.Equal(32 - 2 * (shard.PromptsFiltered + shard.RepliesFiltered), shard.Examples.Count);
    }

    [Fact]
    public async Task ARoundWhoseEveryRequestIsFiltered_FailsNamingTheContentFilter()
    {
        await using var server = await TestTeacher.StartEmulatorAsync(
            ("Emulator:Faults:PromptFilterRate", "0.5"), ("Emulator:Faults:ContentFilterRate", "1"));
        var client = TestTeacher.Client(server);
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 4 });

        var e = await Assert.ThrowsAsync<TeacherRoundFailedException>(() => generator.GenerateAsync(Request("run-all-filtered", 3, [4, 4, 4, 4]), Unlimited()));

        Assert.Contains("content filter", e.Message);
        Assert.Contains("round 3", e.Message);
        Assert.Contains("all 4 request(s)", e.Message);
        Assert.Contains("content_filter", e.Message);
    }

    [Fact]
    public async Task AReplyCutOffAtTheOutputLimit_KeepsItsCompleteItems_CountsTheRestLost_AndLowersTheRequestSize()
    {
        // A model whose output limit holds about 6 samples of the demo pool, asked for 16 per request.
        await using var server = await TestTeacher.StartEmulatorAsync(("Emulator:MaxOutputTokens", "260"));
        var client = TestTeacher.Client(server);
        var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 16, MaxParallelRequests = 1 });

        var shard = await generator.GenerateAsync(Request("run-cut", 1, [8, 8, 8, 8]), Unlimited());

        Assert.True(shard.TruncatedReplies >= 1, "the first 16-sample reply must be cut off");
        Assert.Equal(server.Stats.Truncated, shard.TruncatedReplies);
        Assert.True(shard.SamplesPerRequest < 16, $"samples per request stayed {shard.SamplesPerRequest}");
        Assert.Equal(32, shard.Examples.Count + shard.LostToTruncation + shard.Rejected.Values.Sum());
        Assert.True(shard.Examples.Count > 0);
        Assert.True(shard.Calls.Count > 2, "the second batch of 16 must have been asked in smaller pieces");
        Assert.Equal(0, shard.RepairRequests); // a cut-off reply is not repaired: the repair would be cut off too
        // The next round of the run starts at the lowered size and fits.
        var next = await generator.GenerateAsync(Request("run-cut", 2, [8, 8, 8, 8]) with { SamplesPerRequest = shard.SamplesPerRequest }, Unlimited());
        Assert.True(next.TruncatedReplies <= 1, $"round 2 still cut off {next.TruncatedReplies} replies at {shard.SamplesPerRequest} per request");
    }

    [Fact]
    public async Task CachedPromptTokens_AreRecordedAndPricedAtTheCachedRate()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var options = TestTeacher.FastOptions(o => o.Prices["gpt-4o-mini"] = new TokenPrice(0.15m, 0.60m) { CachedInputPerMillion = 0.075m });
        var client = TestTeacher.Client(server, options: options);
        // Enough few-shot examples that the shared start of the prompt passes the 1,024-token caching minimum.
        var input = TestTeacher.RoundInput([2, 2, 2, 2]) with { FewShotSeed = 9 };
        var promptOptions = new TeacherPromptOptions { FewShotPerClass = 12 };
        var ledger = Unlimited();

        var first = await client.GenerateAsync(TeacherPromptBuilder.Build(input with { Seed = 1 }, promptOptions), TestTeacher.ReplyContext(), new("run-cache", 1), ledger);
        var second = await client.GenerateAsync(TeacherPromptBuilder.Build(input with { Seed = 2, Allocation = [3, 1, 2, 2] }, promptOptions),
            TestTeacher.ReplyContext(), new("run-cache", 1), ledger);

        Assert.Equal(0, first.Calls[0].CachedPromptTokens);
        var call = second.Calls[0];
        Assert.True(call.CachedPromptTokens >= 1024, $"cached {call.CachedPromptTokens} of {call.PromptTokens}");
        Assert.True(call.CachedPromptTokens < call.PromptTokens);
        Assert.Equal(0, call.CachedPromptTokens % 128);
        Assert.Equal(((call.PromptTokens - call.CachedPromptTokens) * 0.15m + call.CachedPromptTokens * 0.075m + call.CompletionTokens * 0.60m) / 1_000_000m,
            call.CostUsd);
        Assert.Equal(call.CachedPromptTokens * 0.075m / 1_000_000m, call.CachedSavingsUsd);
        Assert.Equal(server.Stats.CachedTokens, call.CachedPromptTokens);
    }

    [Fact]
    public void Prices_BindFromConfiguration_WithTheCachedRateAndTheBatchMultiplier()
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Teacher:Prices:gpt-4o-mini:InputPerMillion"] = "0.15",
            ["Teacher:Prices:gpt-4o-mini:OutputPerMillion"] = "0.60",
            ["Teacher:Prices:gpt-4o-mini:CachedInputPerMillion"] = "0.075",
            ["Teacher:Prices:gpt-4o:InputPerMillion"] = "2.5",
            ["Teacher:Prices:gpt-4o:OutputPerMillion"] = "10",
            ["Teacher:Prices:gpt-4o:BatchMultiplier"] = "0.4",
        }).Build();
        var options = new TeacherClientOptions();
        configuration.GetSection(TeacherClientOptions.Section).Bind(options);

        Assert.Equal(0.075m, options.Prices["gpt-4o-mini"].CachedInputPerMillion);
        Assert.Equal(0.5m, options.Prices["gpt-4o-mini"].BatchMultiplier);
        Assert.Null(options.Prices["gpt-4o"].CachedInputPerMillion);
        Assert.Equal(0.4m, options.Prices["gpt-4o"].BatchMultiplier);
        // 1M prompt tokens of which 400k cached, 100k out: 0.6*0.15 + 0.4*0.075 + 0.1*0.60
        Assert.Equal(0.18m, options.Prices["gpt-4o-mini"].Cost(1_000_000, 100_000, 400_000, batch: false));
        Assert.Equal(0.09m, options.Prices["gpt-4o-mini"].Cost(1_000_000, 100_000, 400_000, batch: true));
    }
}
