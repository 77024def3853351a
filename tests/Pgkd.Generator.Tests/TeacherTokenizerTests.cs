using Pgkd.Core.Teacher;
using Pgkd.TeacherTokens;

namespace Pgkd.Generator.Tests;

/// <summary>The teacher's token counts against counts published with tiktoken (OpenAI cookbook, "How to count tokens").</summary>
public class TeacherTokenizerTests
{
    [Theory]
    [InlineData("gpt-4o-mini", "o200k_base")]
    [InlineData("gpt-4o", "o200k_base")]
    [InlineData("gpt-4.1-mini", "o200k_base")]
    [InlineData("gpt-4", "cl100k_base")]
    [InlineData("gpt-3.5-turbo", "cl100k_base")]
    public void A_model_name_picks_its_encoding(string model, string encoding)
    {
        var tokenizer = TeacherTokenizer.ForModel(model);
        Assert.Equal(encoding, tokenizer.Encoding);
        Assert.False(tokenizer.Assumed);
    }

    [Theory]
    [InlineData("pgkd-teacher")]
    [InlineData("my-deployment")]
    [InlineData("")]
    public void An_unknown_deployment_name_is_counted_as_o200k_and_says_so(string model)
    {
        var tokenizer = TeacherTokenizer.ForModel(model);
        Assert.Equal("o200k_base", tokenizer.Encoding);
        Assert.True(tokenizer.Assumed);
        Assert.Contains("assumed", tokenizer.Description);
    }

    [Theory]
    [InlineData("cl100k_base", "gpt-4", "tiktoken is great!", 6)]
    [InlineData("cl100k_base", "gpt-4", "antidisestablishmentarianism", 6)]
    [InlineData("cl100k_base", "gpt-4", "2 + 2 = 4", 7)]
    [InlineData("o200k_base", "gpt-4o", "Hello, world!", 4)]
    [InlineData("o200k_base", "gpt-4o", "tiktoken is great!", 6)]
    [InlineData("o200k_base", "gpt-4o", "", 0)]
    public void Counts_match_tiktoken(string encoding, string model, string text, int tokens)
    {
        var tokenizer = TeacherTokenizer.ForModel(model);
        Assert.Equal(encoding, tokenizer.Encoding);
        Assert.Equal(tokens, tokenizer.CountTokens(text));
    }

    [Fact]
    public void A_chat_request_adds_three_tokens_a_message_its_role_and_three_for_the_reply()
    {
        // The cookbook's count for gpt-4o of [system "You are a helpful assistant.", user "Hello, world!"]: 6 + 4 + 2 × 4 + 3.
        var count = TeacherTokenizer.ForModel("gpt-4o").Counter;
        Assert.Equal(count("You are a helpful assistant.") + count("Hello, world!") + 2 * 4 + 3,
            ChatTokens.Prompt(count, "You are a helpful assistant.", "Hello, world!"));
        Assert.Equal(6, count("You are a helpful assistant."));
    }
}
