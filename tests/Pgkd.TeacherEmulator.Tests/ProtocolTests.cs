using System.Net.Http.Headers;
using System.Text.Json;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>The Chat Completions protocol on both routes, the api key, usage and the error answers, over a real socket.</summary>
public sealed class ProtocolTests
{
    [Fact]
    public async Task OpenAiRoute_AnswersTheGenerationPrompt_WithUsage()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var prompt = Emulators.Prompt([2, 2, 2, 2]);

        using var response = await http.PostAsync("v1/chat/completions", Emulators.Body(prompt, "run-a"));
        Assert.Equal(200, (int)response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var root = doc.RootElement;
        Assert.Equal("chat.completion", root.GetProperty("object").GetString());
        Assert.Equal(Emulators.Model, root.GetProperty("model").GetString());
        var usage = root.GetProperty("usage");
        var promptTokens = usage.GetProperty("prompt_tokens").GetInt32();
        var completionTokens = usage.GetProperty("completion_tokens").GetInt32();
        // Counted as OpenAI does: the model's tokenizer (o200k_base for gpt-4o-mini) and the chat format's tokens per turn.
        var tokenizer = Pgkd.TeacherTokens.TeacherTokenizer.ForModel(Emulators.Model);
        Assert.Equal(ChatTokens.Prompt(tokenizer.Counter, prompt.System, prompt.User), promptTokens);
        var content = root.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        Assert.Equal(tokenizer.CountTokens(content!), completionTokens);
        Assert.Equal(promptTokens + completionTokens, usage.GetProperty("total_tokens").GetInt32());

        var parsed = TeacherReplyParser.Parse(content, new TeacherReplyContext { Labels = Emulators.Labels });
        Assert.True(parsed.IsValidReply, parsed.ReplyError);
        Assert.Equal(8, parsed.Accepted.Count);
    }

    [Fact]
    public async Task AzureRoute_TakesTheDeploymentFromThePath_AndTheApiKeyHeader()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server, key: null);
        http.DefaultRequestHeaders.Add("api-key", Emulators.Key);
        var prompt = Emulators.Prompt([1, 1, 1, 1]);

        using var ok = await http.PostAsync("openai/deployments/pgkd-teacher/chat/completions?api-version=2024-10-21", Emulators.Body(prompt, model: null!));
        Assert.Equal(200, (int)ok.StatusCode);
        using var doc = JsonDocument.Parse(await ok.Content.ReadAsStringAsync());
        Assert.Equal("pgkd-teacher", doc.RootElement.GetProperty("model").GetString());
        Assert.True(doc.RootElement.GetProperty("usage").GetProperty("total_tokens").GetInt32() > 0);

        using var noVersion = await http.PostAsync("openai/deployments/pgkd-teacher/chat/completions", Emulators.Body(prompt, model: null!));
        Assert.Equal(404, (int)noVersion.StatusCode);
    }

    [Theory]
    [InlineData("v1/chat/completions", null)]
    [InlineData("v1/chat/completions", "wrong-key")]
    [InlineData("openai/deployments/pgkd-teacher/chat/completions?api-version=2024-10-21", null)]
    [InlineData("openai/deployments/pgkd-teacher/chat/completions?api-version=2024-10-21", "wrong-key")]
    public async Task RequestsWithoutTheKey_Are401(string route, string? key)
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server, key);
        using var response = await http.PostAsync(route, Emulators.Body([("user", "hello")]));
        Assert.Equal(401, (int)response.StatusCode);
        Assert.Equal(1, server.Stats.Unauthorized);
        Assert.Equal(0, server.Stats.Completed);
    }

    [Fact]
    public async Task UnknownDeploymentOrModel_Is404_WithTheServicesErrorCodes()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);

        using var azure = await http.PostAsync("openai/deployments/nope/chat/completions?api-version=2024-10-21", Emulators.Body([("user", "hi")]));
        Assert.Equal(404, (int)azure.StatusCode);
        Assert.Contains("DeploymentNotFound", await azure.Content.ReadAsStringAsync());

        using var openAi = await http.PostAsync("v1/chat/completions", Emulators.Body([("user", "hi")], model: "gpt-nope"));
        Assert.Equal(404, (int)openAi.StatusCode);
        Assert.Contains("model_not_found", await openAi.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task BadRequests_Are400()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        using var notJson = await http.PostAsync("v1/chat/completions", new StringContent("{nope", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)notJson.StatusCode);
        using var noMessages = await http.PostAsync("v1/chat/completions", new StringContent("""{"model":"gpt-4o-mini","messages":[]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)noMessages.StatusCode);
        using var stream = await http.PostAsync("v1/chat/completions", new StringContent("""{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(400, (int)stream.StatusCode);
    }

    [Fact]
    public async Task ModelsList_NeedsTheKey()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var models = await http.GetStringAsync("v1/models");
        Assert.Contains("gpt-4o-mini", models);
        using var anonymous = Emulators.Http(server, key: null);
        Assert.Equal(401, (int)(await anonymous.GetAsync("v1/models")).StatusCode);
    }

    [Fact]
    public async Task WithoutAnApiKeySetting_TheEmulatorRefusesToStart_NamingTheSetting()
    {
        var settings = Emulators.Settings();
        settings.Remove("Emulator:ApiKey");
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => TeacherEmulatorServer.StartAsync(settings));
        Assert.Contains("Emulator:ApiKey", e.Message);
    }

    [Fact]
    public async Task AMissingPoolFile_FailsAtStart_NamingTheSetting()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            Emulators.StartAsync(("Emulator:PoolPath", "/nonexistent/pool.jsonl")));
        Assert.Contains("Emulator:PoolPath", e.Message);
    }
}
