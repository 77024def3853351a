namespace Pgkd.Core.Teacher;

/// <summary>
/// Counts the tokens of a text as the teacher model's tokenizer does. Core stays free of tokenizer data (megabytes
/// of BPE ranks); the services pass in the real one (<c>Pgkd.TeacherTokens.TeacherTokenizer</c>, o200k/cl100k).
/// </summary>
public delegate int TokenCounter(string text);

public static class TokenCounters
{
    /// <summary>ceil(characters / 4): the rule of thumb, for callers (tests) that have no tokenizer at hand.</summary>
    public static TokenCounter CharactersOverFour { get; } = text => (int)Math.Ceiling((text?.Length ?? 0) / 4.0);
}

/// <summary>
/// The tokens a chat request adds around its messages, as OpenAI counts them for its chat models: 3 per message, the
/// role's own token, and 3 that prime the reply (OpenAI cookbook, "How to count tokens with tiktoken").
/// </summary>
public static class ChatTokens
{
    public const int PerMessage = 3;
    public const int ReplyPriming = 3;

    /// <summary>The prompt tokens of a request with these messages (contents only; roles are one token each).</summary>
    public static int Prompt(TokenCounter count, params IEnumerable<string?> contents) =>
        contents.Sum(c => PerMessage + 1 + count(c ?? "")) + ReplyPriming;
}
