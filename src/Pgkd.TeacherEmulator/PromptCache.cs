using System.Security.Cryptography;
using System.Text;

namespace Pgkd.TeacherEmulator;

/// <summary>
/// Prompt caching as OpenAI and Azure OpenAI bill it: a request whose prompt starts with the same text as an earlier
/// request's (to the same model) has that shared prefix served from the cache, reported as
/// <c>usage.prompt_tokens_details.cached_tokens</c>. As with the real services, only prompts of at least
/// <see cref="MinimumTokens"/> tokens are cached, and the cached part grows in steps of <see cref="StepTokens"/>.
/// Prefixes are compared in steps of 4 characters a token; the prompt is the messages in order, each as role and content.
/// The memory is the process's, bounded (it forgets everything past <see cref="MaxEntries"/> prefixes).
/// </summary>
public sealed class PromptCache
{
    public const int MinimumTokens = 1024;
    public const int StepTokens = 128;
    public const int MaxEntries = 200_000;
    private const int CharsPerToken = 4;

    private readonly HashSet<string> _prefixes = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    /// <summary>Looks the prompt up (the cached tokens of its longest known prefix) and remembers its prefixes.</summary>
    public int CachedTokens(string model, IReadOnlyList<ChatTurn> messages, int promptTokens)
    {
        var text = new StringBuilder(model).Append('\u0000');
        foreach (var m in messages) text.Append(m.Role).Append('\u0000').Append(m.Content).Append('\u0000');
        var prompt = text.ToString();
        var step = StepTokens * CharsPerToken;
        var first = MinimumTokens * CharsPerToken;
        if (prompt.Length < first) return 0;

        // A chain of hashes over the prompt's steps: each step's key stands for the whole prefix up to it.
        var keys = new List<string>();
        var chain = Array.Empty<byte>();
        for (var end = step; end <= prompt.Length; end += step)
        {
            chain = SHA256.HashData([.. chain, .. Encoding.UTF8.GetBytes(prompt.AsSpan(end - step, step).ToString())]);
            keys.Add(Convert.ToHexString(chain));
        }
        lock (_gate)
        {
            var hit = 0;
            for (var i = 0; i < keys.Count && _prefixes.Contains(keys[i]); i++) hit = i + 1;
            if (_prefixes.Count + keys.Count > MaxEntries) _prefixes.Clear();
            foreach (var key in keys) _prefixes.Add(key);
            var cachedChars = hit * step;
            // Prefixes are matched in characters (4 a token); the answer is in the prompt's own tokens (the real tokenizer),
            // never more than its whole 128-token steps, and nothing under the 1,024-token minimum.
            var tokens = Math.Min(promptTokens / StepTokens * StepTokens, cachedChars / CharsPerToken);
            return cachedChars < first || tokens < MinimumTokens ? 0 : tokens;
        }
    }
}
