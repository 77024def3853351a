using System.ClientModel;
using Azure.AI.OpenAI;
using OpenAI;
using OpenAI.Chat;
using Pgkd.Core.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>The two .NET SDKs, used directly, complete requests against the emulator on their own routes.</summary>
public sealed class SdkClientTests
{
    [Fact]
    public async Task AzureOpenAIClient_CompletesOnTheAzureRoute()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = new AzureOpenAIClient(server.Address, new ApiKeyCredential(TestTeacher.Key));
        var chat = client.GetChatClient("pgkd-teacher");
        var prompt = TestTeacher.Prompt([2, 2, 2, 2]);

        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage(prompt.System), new UserChatMessage(prompt.User)],
            new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat() });

        Assert.True(completion.Usage.InputTokenCount > 0);
        Assert.True(completion.Usage.OutputTokenCount > 0);
        var parsed = TeacherReplyParser.Parse(completion.Content[0].Text, TestTeacher.ReplyContext());
        Assert.True(parsed.IsValidReply, parsed.ReplyError);
        Assert.Equal(8, parsed.Accepted.Count);
        Assert.Equal(1, server.Stats.Completed);
    }

    [Fact]
    public async Task OpenAIChatClient_CompletesOnTheOpenAiRoute()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var chat = new ChatClient(TestTeacher.Model, new ApiKeyCredential(TestTeacher.Key), new OpenAIClientOptions { Endpoint = server.OpenAiEndpoint });
        var prompt = TestTeacher.Prompt([1, 3, 1, 3]);

        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage(prompt.System), new UserChatMessage(prompt.User)],
            new ChatCompletionOptions { ResponseFormat = ChatResponseFormat.CreateJsonObjectFormat(), EndUserId = "run-sdk" });

        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
        var parsed = TeacherReplyParser.Parse(completion.Content[0].Text, TestTeacher.ReplyContext());
        Assert.Equal([1, 3, 1, 3], new Pgkd.Core.Data.Dataset(parsed.Accepted).CountByLabel(TestTeacher.Labels));
        Assert.Equal(8, server.Engine.UsedCount("run-sdk")); // the "user" field carried the run id
    }
}
