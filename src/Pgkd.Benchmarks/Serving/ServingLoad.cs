using System.Text.Json;

namespace Pgkd.Benchmarks.Serving;

/// <summary>
/// The seeded request mix of issue 18's load: single texts and batches up to 64, lengths from one token to past the
/// 128-token cap (news texts cut, whole and concatenated), and unicode-heavy texts (emoji with joiners and skin tones, CJK,
/// Arabic, combining marks, zero-width characters). Producer <c>p</c> draws from its own generator, so every
/// configuration's children see the same requests in the same order.
/// </summary>
public sealed class ServingLoad
{
    private static readonly string[] Unicode =
    [
        "😀", "👍🏽", "👨‍👩‍👧‍👦", "🇩🇪🇯🇵", "🚀✨🔥",
        "北京时间今天上午，国家统计局发布了最新经济数据。", "東京証券取引所で株価が大幅に上昇した。", "서울에서 정상회담이 열렸다.",
        "أعلنت الحكومة اليوم عن خطة جديدة لدعم الاقتصاد", "שלום עולם", "नई दिल्ली में बैठक हुई",
        "Z\u0337\u0322\u031Ba\u0338\u0321l\u0335g\u0336o\u0337", "e\u0301\u0301\u0301\u0308", "\u0041\u030A\u0301ngstr\u00F6m",
        "zero\u200Bwidth\u200Cnon\u200Djoiner\uFEFF", "\u200B\u200B\u200B", "\u202Emirrored\u202C", "∑∫√∞≈≠ ℝ ℕ", "\t\n  \u00A0",
    ];

    private readonly string[] _news;

    public ServingLoad(string dataDirectory) =>
        _news = File.ReadLines(Path.Combine(dataDirectory, "test.jsonl")).Take(2000)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();

    /// <summary>One producer's generator: the same seed and producer, the same requests.</summary>
    public static Random ProducerRandom(int seed, int producer) => new(seed * 1000 + producer);

    /// <summary>The next request: 45% one text, 30% 2-16 texts, 25% 17-64 texts.</summary>
    public string[] NextRequest(Random random)
    {
        var p = random.NextDouble();
        var count = p < 0.45 ? 1 : p < 0.75 ? random.Next(2, 17) : random.Next(17, 65);
        var texts = new string[count];
        for (var i = 0; i < count; i++) texts[i] = NextText(random);
        return texts;
    }

    /// <summary>35% a news text cut to 1-120 words (every length up to the cap), 35% one whole, 10% three to five joined (past the cap), 20% unicode-heavy.</summary>
    public string NextText(Random random)
    {
        var p = random.NextDouble();
        if (p < 0.35)
        {
            var words = string.Join(' ', Enumerable.Range(0, 4).Select(_ => News(random))).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return string.Join(' ', words.Take(random.Next(1, 121)));
        }
        if (p < 0.70) return News(random);
        if (p < 0.80) return string.Join(' ', Enumerable.Range(0, random.Next(3, 6)).Select(_ => News(random)));
        var pieces = Enumerable.Range(0, random.Next(1, 17)).Select(_ => Unicode[random.Next(Unicode.Length)]);
        var unicode = string.Join(random.Next(2) == 0 ? " " : "", pieces);
        return random.Next(3) == 0 ? News(random) + " " + unicode : unicode;
    }

    private string News(Random random) => _news[random.Next(_news.Length)];
}
