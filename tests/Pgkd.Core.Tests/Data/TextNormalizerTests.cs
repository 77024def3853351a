using Pgkd.Core.Data;

namespace Pgkd.Core.Tests.Data;

public class TextNormalizerTests
{
    [Theory]
    [InlineData("  hello   world  ", "hello world")]
    [InlineData("a\tb\nc\r\nd", "a b c d")]
    [InlineData("no\u00A0break\u2003em\u3000ideographic", "no break em ideographic")]
    [InlineData("", "")]
    [InlineData(" \t\n ", "")]
    [InlineData(null, "")]
    public void Collapses_whitespace_and_trims(string? input, string expected) =>
        Assert.Equal(expected, TextNormalizer.Normalize(input));

    [Fact]
    public void Composes_to_NFC()
    {
        var decomposed = "Cafe\u0301";
        Assert.Equal("Caf\u00E9", TextNormalizer.Normalize(decomposed));
    }

    [Fact]
    public void Keeps_case_and_punctuation() =>
        Assert.Equal("Sci/Tech: AI!", TextNormalizer.Normalize("Sci/Tech: AI!"));

    [Fact]
    public void Agrees_with_the_definition_on_near_normal_ascii_texts()
    {
        // The fast path for already-normal ASCII must give what the definition (NFC, whitespace runs to one space,
        // trimmed) gives, on texts that are normal and texts one character away from it.
        var random = new Random(5);
        const string alphabet = "ab Z.!~ \t\n\u007f\u001f\u00a0\u00e9";
        var chars = System.Text.RegularExpressions.Regex.Unescape(alphabet);
        for (var i = 0; i < 5_000; i++)
        {
            var text = new string(Enumerable.Range(0, random.Next(1, 12)).Select(_ => chars[random.Next(chars.Length)]).ToArray());
            var expected = string.Join(' ', text.Normalize(System.Text.NormalizationForm.FormC)
                .Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
            Assert.True(expected == TextNormalizer.Normalize(text), $"'{System.Text.RegularExpressions.Regex.Escape(text)}'");
        }
        const string normal = "Already normal: one space, ASCII.";
        Assert.Same(normal, TextNormalizer.Normalize(normal));
    }

    [Fact]
    public void Replaces_lone_surrogates_instead_of_throwing()
    {
        Assert.Equal("a\uFFFDb", TextNormalizer.Normalize("a\uD800b"));
        Assert.Equal("x\uFFFD", TextNormalizer.Normalize("x\uDC00"));
        Assert.Equal("\U0001F600 ok", TextNormalizer.Normalize("\U0001F600  ok"));
    }
}

public class TextHashTests
{
    [Fact]
    public void Is_sha256_hex_of_the_normalised_text()
    {
        // sha256("abc"), the FIPS 180-2 test vector.
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", TextHash.Of("  abc\n"));
    }

    [Fact]
    public void Equal_for_equivalent_texts_and_different_otherwise()
    {
        Assert.Equal(TextHash.Of("Caf\u00E9  au lait"), TextHash.Of("Cafe\u0301 au\tlait"));
        Assert.NotEqual(TextHash.Of("Cafe"), TextHash.Of("cafe"));
    }

    [Fact]
    public void SetOf_hashes_every_text()
    {
        var set = TextHash.SetOf([new("a b", "X"), new("a  b", "Y"), new("c", "X")]);
        Assert.Equal(2, set.Count);
        Assert.Contains(TextHash.Of("c"), set);
    }
}
