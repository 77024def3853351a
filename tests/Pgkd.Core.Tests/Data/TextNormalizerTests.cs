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
