using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Core.Teacher;

namespace Pgkd.Core.Tests.Teacher;

/// <summary>Issue 22: the reply schema with the labels as an enum, replies cut off at the output limit, and the request size after a cut.</summary>
public class StructuredReplyTests
{
    private static readonly LabelSet Labels = LabelSet.FromLines("World\nSports\nBusiness\nSci/Tech");
    private static readonly TeacherReplyContext Context = new() { Labels = Labels };

    [Fact]
    public void The_schema_is_strict_and_its_label_is_an_enum_of_the_runs_labels()
    {
        using var schema = JsonDocument.Parse(TeacherReplySchema.JsonFor(Labels));
        var root = schema.RootElement;
        Assert.Equal("object", root.GetProperty("type").GetString());
        Assert.False(root.GetProperty("additionalProperties").GetBoolean());
        Assert.Equal(["samples"], root.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        var item = root.GetProperty("properties").GetProperty("samples").GetProperty("items");
        Assert.False(item.GetProperty("additionalProperties").GetBoolean());
        Assert.Equal(["text", "label"], item.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(Labels.Names, item.GetProperty("properties").GetProperty("label").GetProperty("enum").EnumerateArray().Select(e => e.GetString()!));
        Assert.Matches("^[a-zA-Z0-9_-]{1,64}$", TeacherReplySchema.Name);
    }

    [Fact]
    public void A_cut_off_reply_keeps_its_complete_items_only()
    {
        const string full = """{"samples":[{"text":"Striker scores twice","label":"Sports"},{"text":"Shares fall on weak profits","label":"Business"},{"text":"New chip doubles""";
        var kept = TeacherReplyParser.ParseTruncated(full, Context);
        Assert.True(kept.IsValidReply);
        Assert.Equal(2, kept.ItemCount);
        Assert.Equal(["Striker scores twice", "Shares fall on weak profits"], kept.Accepted.Select(e => e.Text));
        // The plain parser finds nothing usable in it.
        Assert.False(TeacherReplyParser.Parse(full, Context).IsValidReply);
    }

    [Theory]
    [InlineData("""{"samples":[{"text":"Striker scores twice","lab""", 0)]
    [InlineData("""{"samples":[""", 0)]
    [InlineData("""{"note":{"a":[1,2]},"samples":[{"text":"Striker scores twice","label":"Sports","extra":{"x":[1]}},{""", 1)]
    [InlineData("""```json\n{"samples":[{"text":"Striker scores twice","label":"Sports"},{"text":"Mars rover lands","label":"Sci/Tech"}]}\n```""", 2)]
    [InlineData("", 0)]
    [InlineData("Sorry, I", 0)]
    public void Cut_off_replies_of_every_shape_never_throw(string reply, int complete)
    {
        var kept = TeacherReplyParser.ParseTruncated(reply, Context);
        Assert.Equal(complete, kept.ItemCount);
        Assert.Equal(complete, kept.Accepted.Count);
    }

    [Fact]
    public void Complete_items_are_still_checked_like_any_other()
    {
        const string reply = """{"samples":[{"text":"Striker scores twice","label":"Miscellaneous"},{"text":"Mars rover lands safely","label":"Sci/Tech"},{"text":"Cut""";
        var kept = TeacherReplyParser.ParseTruncated(reply, Context);
        Assert.Equal(2, kept.ItemCount);
        Assert.Equal(1, kept.RejectTally[RejectReason.UnknownLabel]);
        Assert.Equal("Mars rover lands safely", Assert.Single(kept.Accepted).Text);
    }

    [Theory]
    [InlineData(16, 9, 8)]
    [InlineData(16, 0, 8)]
    [InlineData(16, 15, 13)]
    [InlineData(8, 1, 1)]
    [InlineData(1, 0, 1)]
    [InlineData(2, 5, 1)]
    public void The_request_size_after_a_cut_is_a_little_under_what_fitted(int current, int complete, int expected) =>
        Assert.Equal(expected, ReplyTruncation.NextSamplesPerRequest(current, complete));
}
