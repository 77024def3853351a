using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Point 2: FastBertTokenizer over the MiniLM vocabulary (uncased, accents stripped).</summary>
public sealed class TokenizerTests
{
    private static readonly StudentTokenizer T = TestSupport.Tokenizer;

    private long Id(string token) => T.Vocabulary.ToList().IndexOf(token);

    [Fact]
    public void Special_tokens_frame_every_encoding()
    {
        Assert.Equal([101, 7592, 2088, 102], T.Encode("Hello world", 16));
        Assert.Equal([101, 102], T.Encode("", 16));
        Assert.Equal(101, T.ClsId);
        Assert.Equal(102, T.SepId);
        Assert.Equal(100, T.UnkId);
    }

    [Fact]
    public void Accents_are_stripped_and_case_folded()
    {
        Assert.Equal(T.Encode("cafe naive resume", 32), T.Encode("Café NAÏVE résumé", 32));
        Assert.Equal(T.Encode("uber", 8), T.Encode("Über", 8));
    }

    [Fact]
    public void CJK_characters_become_one_token_each()
    {
        var ids = T.Encode("東京は日本", 32);
        Assert.Equal(5 + 2, ids.Length);
        Assert.Equal(Id("東"), ids[1]);
        Assert.Equal(Id("京"), ids[2]);
        Assert.Equal(Id("日"), ids[4]);
        Assert.DoesNotContain((long)T.UnkId, ids);
    }

    [Fact]
    public void Emoji_is_unknown_and_does_not_swallow_the_words_around_it()
    {
        var ids = T.Encode("hello 😀 world", 16);
        Assert.Equal([101, Id("hello"), T.UnkId, Id("world"), 102], ids);
        // As Hugging Face's BERT: an emoji is neither whitespace nor punctuation, so a word glued to it is one unknown word.
        Assert.Equal([101, T.UnkId, 102], T.Encode("hello😀world", 16));
    }

    [Fact]
    public void Tabs_and_newlines_separate_words_like_spaces()
    {
        Assert.Equal(T.Encode("market shares fell", 16), T.Encode("market\tshares\r\nfell", 16));
        Assert.Equal(T.Encode("a b", 8), T.Encode("\n\ta \n\n b\t", 8));
    }

    [Fact]
    public void Long_text_is_cut_to_the_maximum_length_and_keeps_SEP()
    {
        var text = string.Join(" ", Enumerable.Repeat("extraordinarily interesting", 100));
        foreach (var max in new[] { 8, 16, 64, 128 })
        {
            var ids = T.Encode(text, max);
            Assert.Equal(max, ids.Length);
            Assert.Equal(T.ClsId, ids[0]);
            Assert.Equal(T.SepId, ids[^1]);
            Assert.Equal(1, ids.Count(i => i == T.SepId));
        }
        // The kept prefix is the prefix of the untruncated encoding.
        Assert.Equal(T.Encode(text, 512)[..63], T.Encode(text, 64)[..63]);
    }

    [Fact]
    public void Batch_pads_with_zero_ids_and_zero_mask()
    {
        var b = T.EncodeBatch(["a b c d", "a"], 16);
        Assert.Equal(2, b.Count);
        Assert.Equal(6, b.Length);
        Assert.Equal([1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], b.AttentionMask);
        Assert.Equal([0, 0, 0], b.InputIds[9..]);
    }

    [Fact]
    public void Vocabulary_hash_is_stable()
    {
        Assert.Matches("^[0-9a-f]{64}$", T.VocabularyHash);
        Assert.Equal(T.VocabularyHash, StudentTokenizer.FromVocabularyFile(TestSupport.Pretrained.VocabularyPath).VocabularyHash);
    }
}
