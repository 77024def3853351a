using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>
/// Issue 19.5, found by the chaos scenario: head-mode runs equal in every input trained and scored differently after a
/// trainer or evaluator restart, because a text's cached sentence embedding depended on the texts embedded with it (the
/// batch it was padded in). Replay needs each text's vector to be the same bits however it was batched.
/// </summary>
public sealed class EmbeddingReplayTests
{
    private static readonly OnnxRunOptions Cpu = new() { Threads = 2, PreferCuda = false };

    private static string[] Texts { get; } = TestSupport.PaddedBatchTexts
        .Concat(AgNews.Tiny.Select(e => e.Text))
        .Append("Talks on the border dispute resumed in Cairo with both foreign ministers present.")
        .Append("Oil prices fell as investors worried about demand.") // the same token count as a text above
        .ToArray();

    [Fact]
    public void A_texts_embedding_is_the_same_bits_whether_embedded_alone_or_with_any_other_texts()
    {
        using var embedder = new PretrainedEmbedder(TestSupport.Pretrained, TestSupport.Tokenizer, Cpu);
        var together = embedder.Embed(Texts, 64);
        var differences = new List<string>();
        for (var i = 0; i < Texts.Length; i++)
        {
            embedder.Cache.Clear();
            var alone = embedder.Embed([Texts[i]], 64)[0];
            if (!alone.AsSpan().SequenceEqual(together[i]))
                differences.Add($"text {i} ({Texts[i].Length} chars): max |diff| {alone.Zip(together[i], (a, b) => Math.Abs(a - b)).Max():E2}");
        }
        // In reverse order with half the texts already cached: what is computed now has other partners.
        embedder.Cache.Clear();
        embedder.Embed(Texts.Where((_, i) => i % 2 == 0).ToArray(), 64);
        var mixed = embedder.Embed(Texts.Reverse().ToArray(), 64).Reverse().ToArray();
        for (var i = 0; i < Texts.Length; i++)
            if (!mixed[i].AsSpan().SequenceEqual(together[i])) differences.Add($"text {i} after a partly filled cache");
        Assert.True(differences.Count == 0, "embeddings depend on their batch partners: " + string.Join("; ", differences));
    }
}
