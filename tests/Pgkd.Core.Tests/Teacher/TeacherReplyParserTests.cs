using System.Diagnostics;
using System.Text;
using System.Text.Json;
using CsCheck;
using Pgkd.Core.Data;
using Pgkd.Core.Teacher;

namespace Pgkd.Core.Tests.Teacher;

public class TeacherReplyParserTests
{
    private static readonly TeacherReplyContext Context = new()
    {
        Labels = AgNews.Labels,
        TrainingHashes = new HashSet<string> { TextHash.Of("Already in the training set") },
        HeldOutHashes = new HashSet<string> { TextHash.Of("A validation text about stocks") },
        MinTextLength = 5,
        MaxTextLength = 200,
        MaxItems = 10,
    };

    private const string Valid = """{"samples":[{"text":"Markets rally on jobs data","label":"Business"},{"text":"Striker scores twice","label":"sports"}]}""";

    private static TeacherReplyParseResult Parse(string? reply, TeacherReplyContext? context = null) =>
        TeacherReplyParser.Parse(reply, context ?? Context);

    [Fact]
    public void Accepts_plain_json_and_canonicalises_labels()
    {
        var r = Parse(Valid);
        Assert.True(r.IsValidReply);
        Assert.Equal([new LabeledExample("Markets rally on jobs data", "Business"), new LabeledExample("Striker scores twice", "Sports")], r.Accepted);
        Assert.Empty(r.Rejections);
        Assert.Equal(2, r.ItemCount);
        Assert.Equal(0, r.RejectedCount);
    }

    [Theory]
    [InlineData("```json\n" + Valid + "\n```")]
    [InlineData("Here are your samples:\n```\n" + Valid + "\n```\nHope this helps!")]
    [InlineData("Sure! Here you go: " + Valid + " Let me know if you need more.")]
    [InlineData("I considered {the weak classes} first.\n" + Valid)]
    [InlineData("  \n" + Valid + "\n")]
    [InlineData("{\"Samples\":[{\"Text\":\"Markets rally on jobs data\",\"LABEL\":\"Business\"},{\"text\":\"Striker scores twice\",\"label\":\"sports\",}],}")]
    public void Finds_json_in_fences_after_prose_and_tolerates_case_and_trailing_commas(string reply)
    {
        var r = Parse(reply);
        Assert.Null(r.ReplyError);
        Assert.Equal(2, r.Accepted.Count);
    }

    [Fact]
    public void A_fenced_block_wins_over_json_looking_prose_before_it()
    {
        var reply = "You asked for {\"samples\":[{\"text\":\"...\",\"label\":\"World\"}]}, so here it is:\n```json\n" + Valid + "\n```";
        var r = Parse(reply);
        Assert.Equal(2, r.Accepted.Count);
        Assert.Empty(r.Rejections);
    }

    [Fact]
    public void Json_deeper_than_the_limit_is_refused_even_when_well_formed()
    {
        var deep = new string('[', 40) + new string(']', 40);
        var r = Parse("{\"samples\":[{\"text\":\"Valid text here\",\"label\":\"World\",\"extra\":" + deep + "}]}");
        Assert.False(r.IsValidReply);
        Assert.Contains("depth", r.ReplyError);
        var shallow = new string('[', 20) + new string(']', 20);
        Assert.Single(Parse("{\"samples\":[{\"text\":\"Valid text here\",\"label\":\"World\",\"extra\":" + shallow + "}]}").Accepted);
    }

    [Fact]
    public void Labels_resolve_by_index_as_number_or_digits()
    {
        var r = Parse("""{"samples":[{"text":"Summit in Geneva ends","label":0},{"text":"New phone chip unveiled","label":"3"}]}""");
        Assert.Equal(["World", "Sci/Tech"], r.Accepted.Select(a => a.Label));
    }

    [Fact]
    public void Rejects_each_bad_item_with_a_reason_and_keeps_the_good_ones()
    {
        var reply = """
        {"samples":[
          {"text":"Good one about elections","label":"World"},
          {"text":"Bad label here","label":"Sprots"},
          {"text":"   ","label":"World"},
          {"text":"tiny","label":"World"},
          {"text":"LONG","label":"World"},
          {"text":"A validation   text about stocks","label":"Business"},
          {"text":"Already in the training set","label":"World"},
          {"text":"Good one about  elections","label":"Sports"},
          {"label":"World"},
          {"text":"no label"},
          "just a string",
          {"text":42,"label":"World"},
          {"text":"Index out of range","label":7},
          {"text":"Label as object","label":{"name":"World"}}
        ]}
        """.Replace("\"LONG\"", JsonSerializer.Serialize(new string('x', 201)));
        var r = Parse(reply);
        Assert.Null(r.ReplyError);
        Assert.Equal([new LabeledExample("Good one about elections", "World")], r.Accepted);
        Assert.Equal(14, r.ItemCount);
        Assert.Equal(
        [
            (1, RejectReason.UnknownLabel), (2, RejectReason.EmptyText), (3, RejectReason.TextTooShort),
            (4, RejectReason.TextTooLong), (5, RejectReason.HeldOutLeakage), (6, RejectReason.DuplicateOfTraining),
            (7, RejectReason.DuplicateInReply), (8, RejectReason.MissingField), (9, RejectReason.MissingField),
            (10, RejectReason.InvalidItem), (11, RejectReason.InvalidItem), (12, RejectReason.UnknownLabel),
            (13, RejectReason.UnknownLabel),
        ], r.Rejections.Select(x => (x.ItemIndex, x.Reason)));
        Assert.Equal(3, r.RejectTally[RejectReason.UnknownLabel]);
        Assert.Equal(2, r.RejectTally[RejectReason.MissingField]);
        Assert.Equal(13, r.RejectedCount);
        Assert.Equal("unknown label \"Sprots\" (known: World, Sports, Business, Sci/Tech)", r.Rejections[0].Detail);
        Assert.Equal("text is 201 characters, over the limit of 200", r.Rejections[3].Detail);
    }

    [Fact]
    public void Items_beyond_the_limit_are_rejected()
    {
        var items = Enumerable.Range(0, 15).Select(i => new { text = $"Distinct text number {i}", label = "World" });
        var r = Parse(JsonSerializer.Serialize(new { samples = items }));
        Assert.Equal(10, r.Accepted.Count);
        Assert.Equal(5, r.RejectTally[RejectReason.OverItemLimit]);
    }

    [Theory]
    [InlineData(null, "empty reply")]
    [InlineData("   ", "empty reply")]
    [InlineData("I cannot help with that.", "no JSON object found in the reply")]
    [InlineData("{\"items\":[]}", "the JSON object has no \"samples\" field")]
    [InlineData("{\"samples\":{\"text\":\"x\"}}", "\"samples\" must be an array, found object")]
    [InlineData("{\"samples\":[{\"text\":\"x\"", "invalid JSON")]
    public void Unusable_replies_get_a_reply_error(string? reply, string error)
    {
        var r = Parse(reply);
        Assert.False(r.IsValidReply);
        Assert.StartsWith(error, r.ReplyError);
        Assert.Empty(r.Accepted);
    }

    [Fact]
    public void An_empty_samples_array_is_valid_but_accepts_nothing()
    {
        var r = Parse("{\"samples\":[]}");
        Assert.True(r.IsValidReply);
        Assert.Empty(r.Accepted);
    }

    [Fact]
    public void Lone_surrogate_escapes_do_not_throw()
    {
        var r = Parse("""{"samples":[{"text":"bad \ud800 surrogate text","label":"World"},{"text":"fine text here","label":"\udc00"}]}""");
        Assert.True(r.IsValidReply);
        Assert.Equal(2, r.ItemCount);
        Assert.DoesNotContain("internal error", r.ReplyError ?? "");
    }

    // ---- hostile input ----

    private static void NeverThrows(string? reply)
    {
        var r = Parse(reply);
        Assert.NotNull(r);
        Assert.False(r.ReplyError?.StartsWith("internal error", StringComparison.Ordinal) ?? false, r.ReplyError);
    }

    [Fact]
    public void Property_never_throws_on_random_bytes()
    {
        Gen.Byte.Array[0, 400].Sample(bytes => NeverThrows(Encoding.UTF8.GetString(bytes)), iter: 2000);
    }

    [Fact]
    public void Property_never_throws_on_random_strings_and_json_fragments()
    {
        var fragments = Gen.OneOf<string>("{", "}", "[", "]", "\"samples\"", ":", ",", "\"text\"", "\"label\"", "\"World\"", "\"x y z\"",
            "1", "-1", "null", "true", "```json\n", "\n```", "\\u0000", "\\ud800", "\"", "\\", " ", "//", "/*");
        Gen.OneOf(Gen.String, fragments.Array[0, 60].Select(parts => string.Concat(parts)), Gen.Char.Array[0, 200].Select(c => new string(c)))
            .Sample(NeverThrows, iter: 3000);
    }

    [Fact]
    public void Property_well_formed_replies_accept_every_distinct_valid_item()
    {
        var item = Gen.Select(Gen.Int[0, 3], Gen.Char["abcdefgh "].Array[5, 40].Select(c => new string(c)), (label, text) => (Label: label, Text: "Item " + text));
        item.Array[0, 10].Sample(items =>
        {
            var reply = JsonSerializer.Serialize(new { samples = items.Select(i => new { text = i.Text, label = AgNews.Labels[i.Label] }) });
            var r = Parse(reply, Context with { MaxItems = 100 });
            var distinct = items.Select(i => TextNormalizer.Normalize(i.Text)).Distinct().Count();
            Assert.Equal(distinct, r.Accepted.Count);
            Assert.Equal(items.Length - distinct, r.RejectedCount);
            Assert.All(r.Accepted, a => Assert.Equal(TextNormalizer.Normalize(a.Text), a.Text));
            Assert.Equal(r.Accepted.Count, r.Accepted.Select(a => TextHash.Of(a.Text)).Distinct().Count());
        }, iter: 300);
    }

    [Theory]
    [InlineData('[')]
    [InlineData('{')]
    public void Deeply_nested_json_is_refused_quickly(char open)
    {
        var deep = open == '[' ? new string('[', 100_000) : string.Concat(Enumerable.Repeat("{\"a\":", 100_000));
        var watch = Stopwatch.StartNew();
        var r = Parse(deep);
        Assert.False(r.IsValidReply);
        Assert.DoesNotContain("internal error", r.ReplyError);
        var wrapped = Parse("{\"samples\":" + deep);
        Assert.False(wrapped.IsValidReply);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"took {watch.Elapsed}");
    }

    [Fact]
    public void A_five_megabyte_reply_is_refused_by_size()
    {
        var huge = "{\"samples\":[{\"text\":\"" + new string('a', 5_000_000) + "\",\"label\":\"World\"}]}";
        var r = Parse(huge);
        Assert.Equal($"reply is {huge.Length} characters, over the limit of 4000000", r.ReplyError);
        Assert.Empty(r.Accepted);
    }

    [Fact]
    public void A_five_megabyte_text_within_a_larger_limit_is_rejected_as_too_long()
    {
        var huge = "{\"samples\":[{\"text\":\"" + new string('a', 5_000_000) + "\",\"label\":\"World\"},{\"text\":\"Normal item text\",\"label\":\"World\"}]}";
        var r = Parse(huge, Context with { MaxReplyChars = 6_000_000 });
        Assert.True(r.IsValidReply);
        Assert.Equal(RejectReason.TextTooLong, r.Rejections.Single().Reason);
        Assert.Single(r.Accepted);
    }

    [Fact]
    public void Many_items_are_tallied_but_details_are_capped()
    {
        var items = string.Join(",", Enumerable.Repeat("{\"text\":\"same text again\",\"label\":\"World\"}", 5000));
        var r = Parse("{\"samples\":[" + items + "]}", Context with { MaxItems = 100_000 });
        Assert.Single(r.Accepted);
        Assert.Equal(4999, r.RejectTally[RejectReason.DuplicateInReply]);
        Assert.Equal(TeacherReplyParser.MaxRejectionDetails, r.Rejections.Count);
    }
}
