namespace Pgkd.Core.Teacher;

/// <summary>
/// Dollar prices per million tokens. Prompt tokens the provider served from its prompt cache
/// (<c>usage.prompt_tokens_details.cached_tokens</c>) cost <see cref="CachedInputPerMillion"/> (OpenAI and Azure
/// bill them at a discount; unset: the full input price), and a request sent through the Batch API costs
/// <see cref="BatchMultiplier"/> times the direct price (both bill about half).
/// </summary>
public sealed record TokenPrice(decimal InputPerMillion, decimal OutputPerMillion)
{
    public decimal? CachedInputPerMillion { get; init; }

    public decimal BatchMultiplier { get; init; } = 0.5m;

    public decimal Cost(long promptTokens, long completionTokens) => Cost(promptTokens, completionTokens, 0, false);

    /// <summary><paramref name="cachedPromptTokens"/> are part of <paramref name="promptTokens"/>, as in the API's usage.</summary>
    public decimal Cost(long promptTokens, long completionTokens, long cachedPromptTokens, bool batch)
    {
        var cached = Math.Clamp(cachedPromptTokens, 0, promptTokens);
        var cost = ((promptTokens - cached) * InputPerMillion + cached * (CachedInputPerMillion ?? InputPerMillion)
                    + completionTokens * OutputPerMillion) / 1_000_000m;
        return batch ? cost * BatchMultiplier : cost;
    }

    /// <summary>What the cached prompt tokens saved against the full input price.</summary>
    public decimal CachedSavings(long promptTokens, long cachedPromptTokens, bool batch)
    {
        var cached = Math.Clamp(cachedPromptTokens, 0, promptTokens);
        var saved = cached * (InputPerMillion - (CachedInputPerMillion ?? InputPerMillion)) / 1_000_000m;
        return batch ? saved * BatchMultiplier : saved;
    }
}

/// <summary>
/// Prices by deployment or model name (case-insensitive), with "*" as the fallback. Configuration:
/// <c>Teacher:Prices:gpt-4o-mini:InputPerMillion=0.15</c>, <c>...:OutputPerMillion=0.60</c>. A name with
/// no price and no "*" costs 0 (and <see cref="HasPrice"/> says so), so a $ budget never stops it.
/// </summary>
public sealed class TeacherPriceTable(IReadOnlyDictionary<string, TokenPrice> prices)
{
    private readonly Dictionary<string, TokenPrice> _prices = new(prices, StringComparer.OrdinalIgnoreCase);

    public static TeacherPriceTable Empty { get; } = new(new Dictionary<string, TokenPrice>());

    public bool HasPrice(string model) => _prices.ContainsKey(model) || _prices.ContainsKey("*");

    public TokenPrice PriceOf(string model) =>
        _prices.TryGetValue(model, out var p) ? p : _prices.TryGetValue("*", out var d) ? d : new TokenPrice(0, 0);
}
