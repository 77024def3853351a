using Xunit.Abstractions;
using System.Text;
using Pgkd.Core.Data;

namespace Pgkd.Core.Tests.Data;

public class DatasetReaderJsonlTests
{
    private static readonly DatasetReadOptions WithLabels = new() { Labels = AgNews.Labels, MaxTextLength = 100 };

    private static Dataset Read(string content, DatasetReadOptions? options = null) =>
        DatasetReader.ReadJsonl(TestSupport.StreamOf(content), "seed_train.jsonl", options ?? WithLabels);

    private static DatasetFormatException Fails(string content, DatasetReadOptions? options = null) =>
        Assert.Throws<DatasetFormatException>(() => Read(content, options));

    [Fact]
    public void Reads_examples_normalises_text_and_canonicalises_labels()
    {
        var d = Read("{\"text\": \"Team  wins\\tcup\", \"label\": \"sports\"}\n\n{\"text\":\"Chips\",\"label\":\"Sci/Tech\",\"extra\":1}\r\n");
        Assert.Equal([new LabeledExample("Team wins cup", "Sports"), new LabeledExample("Chips", "Sci/Tech")], d.Examples);
    }

    [Fact]
    public void Accepts_integer_labels_as_indices_when_a_label_set_is_given() =>
        Assert.Equal("Business", Read("{\"text\":\"Stocks\",\"label\":2}").Examples[0].Label);

    [Fact]
    public void Without_a_label_set_labels_are_taken_as_written()
    {
        var d = Read("{\"text\":\"x\",\"label\":\" Anything \"}", new DatasetReadOptions());
        Assert.Equal("Anything", d.Examples[0].Label);
    }

    [Fact]
    public void Normalisation_can_be_turned_off()
    {
        var d = Read("{\"text\":\" a\\tb \",\"label\":\"World\"}", WithLabels with { NormalizeText = false });
        Assert.Equal(" a\tb ", d.Examples[0].Text);
    }

    [Fact]
    public void Reads_a_byte_order_mark()
    {
        var bytes = Encoding.UTF8.GetPreamble().Concat(Encoding.UTF8.GetBytes("{\"text\":\"x\",\"label\":\"World\"}")).ToArray();
        Assert.Single(DatasetReader.ReadJsonl(new MemoryStream(bytes), "f", WithLabels).Examples);
    }

    [Theory]
    [InlineData("{\"text\": \"ok\", \"label\": \"Sprots\"}", "unknown label \"Sprots\" (known: World, Sports, Business, Sci/Tech)")]
    [InlineData("{\"text\": \"ok\", \"label\": 9}", "unknown label 9 (known: World, Sports, Business, Sci/Tech)")]
    [InlineData("{\"label\": \"World\"}", "missing field \"text\"")]
    [InlineData("{\"text\": \"ok\"}", "missing field \"label\"")]
    [InlineData("{\"text\": \"  \\n \", \"label\": \"World\"}", "empty text")]
    [InlineData("{\"text\": 5, \"label\": \"World\"}", "field \"text\" must be a string, found number")]
    [InlineData("[1,2]", "expected a JSON object, found array")]
    [InlineData("{\"text\": \"ok\", \"label\": \"World\"", "invalid JSON")]
    [InlineData("not json", "invalid JSON")]
    public void Each_problem_is_reported_with_source_line_and_problem(string badLine, string problem)
    {
        var content = "{\"text\":\"fine\",\"label\":\"World\"}\n\n" + badLine + "\n{\"text\":\"fine too\",\"label\":\"Sports\"}";
        var e = Fails(content);
        var error = Assert.Single(e.Errors);
        Assert.Equal("seed_train.jsonl", error.Source);
        Assert.Equal(3, error.Line);
        Assert.StartsWith(problem, error.Problem);
        Assert.Contains($"seed_train.jsonl line 3: {problem}", e.Message);
    }

    [Fact]
    public void Text_over_the_limit_names_its_length()
    {
        var e = Fails($"{{\"text\":\"{new string('x', 101)}\",\"label\":\"World\"}}");
        Assert.Equal("seed_train.jsonl line 1: text is 101 characters, over the limit of 100", e.Errors[0].ToString());
    }

    [Fact]
    public void Collects_several_errors_and_stops_at_the_limit()
    {
        var lines = string.Join("\n", Enumerable.Range(0, 30).Select(i => i % 2 == 0 ? "{\"text\":\"x\",\"label\":\"Nope\"}" : "{\"text\":\"x\",\"label\":\"World\"}"));
        var all = Fails(lines, WithLabels with { MaxErrors = 100 });
        Assert.Equal(15, all.Errors.Count);
        Assert.Equal([1, 3, 5], all.Errors.Take(3).Select(x => x.Line));
        Assert.False(all.MoreErrorsOmitted);

        var capped = Fails(lines, WithLabels with { MaxErrors = 4 });
        Assert.Equal(4, capped.Errors.Count);
        Assert.True(capped.MoreErrorsOmitted);
        Assert.Contains("more errors omitted", capped.Message);
    }

    [Fact]
    public void An_empty_file_is_an_error_unless_allowed()
    {
        Assert.Contains("no examples", Fails("\n\n").Message);
        Assert.Equal(0, Read("", WithLabels with { AllowEmpty = true }).Count);
    }

    [Fact]
    public void Writer_output_reads_back_unchanged()
    {
        var examples = new[] { new LabeledExample("Quotes \" and \\ and é and 😀", "World"), new LabeledExample("Line", "Sports") };
        using var stream = new MemoryStream();
        DatasetWriter.WriteJsonl(stream, examples);
        stream.Position = 0;
        Assert.Equal(examples, DatasetReader.ReadJsonl(stream, "round-1.jsonl", WithLabels).Examples);
    }

    [AgNewsFact]
    public void Reads_the_real_agnews_seed_files_when_present()
    {
        var folder = AgNews.Folder!;
        var labels = LabelSet.FromLines(File.ReadAllText(Path.Combine(folder, "labels.txt")));
        Assert.Equal(["World", "Sports", "Business", "Sci/Tech"], labels.Names);
        using var train = File.OpenRead(Path.Combine(folder, "seed_train.jsonl"));
        var d = DatasetReader.ReadJsonl(train, "seed_train.jsonl", new DatasetReadOptions { Labels = labels });
        Assert.Equal(800, d.Count);
        Assert.Equal([200, 200, 200, 200], d.CountByLabel(labels));
    }
}

public class DatasetReaderCsvTests
{
    private static readonly DatasetReadOptions WithLabels = new() { Labels = AgNews.Labels };

    private static Dataset Read(string content) => DatasetReader.ReadCsv(TestSupport.StreamOf(content), "upload.csv", WithLabels);

    [Fact]
    public void Reads_quoted_fields_escaped_quotes_and_any_column_order()
    {
        var d = Read("label,text\r\nWorld,plain text\r\nSports,\"with, comma and \"\"quotes\"\"\"\r\n");
        Assert.Equal([new LabeledExample("plain text", "World"), new LabeledExample("with, comma and \"quotes\"", "Sports")], d.Examples);
    }

    [Fact]
    public void Multi_line_quoted_fields_keep_line_numbers_right()
    {
        var csv = "text,label\n\"first\nsecond\nthird\",World\nok,Sprots\n";
        var e = Assert.Throws<DatasetFormatException>(() => Read(csv));
        Assert.Equal("upload.csv line 5: unknown label \"Sprots\" (known: World, Sports, Business, Sci/Tech)", Assert.Single(e.Errors).ToString());
    }

    [Fact]
    public void Crlf_inside_quotes_counts_as_one_line_break()
    {
        var e = Assert.Throws<DatasetFormatException>(() => Read("text,label\r\n\"a\r\nb\r\nc\",World\r\nok,Sprots\r\n"));
        Assert.Equal(5, Assert.Single(e.Errors).Line);
    }

    [Fact]
    public void Multi_line_text_is_normalised_to_one_line() =>
        Assert.Equal("first second", Read("text,label\n\"first\r\nsecond\",World").Examples[0].Text);

    [Theory]
    [InlineData("text,label\nok,World\n\"never closed,World\n", 3, "unterminated quoted field (opened on line 3)")]
    [InlineData("text,label\n\"closed\"x,World\nok,World\n", 2, "unexpected character 'x' after a closing quote")]
    [InlineData("text,label\na,b,c\n", 2, "expected 2 fields, found 3")]
    [InlineData("body,category\nx,World\n", 1, "header must name the columns text and label, found: body,category")]
    [InlineData("", 1, "missing header (expected text,label)")]
    public void Reports_structural_problems(string csv, int line, string problem)
    {
        var e = Assert.Throws<DatasetFormatException>(() => Read(csv));
        Assert.Contains(e.Errors, x => x.Line == line && x.Problem == problem && x.Source == "upload.csv");
    }

    [Fact]
    public void Skips_blank_lines_and_keeps_extra_columns_out()
    {
        var d = Read("id,text,label\n\n1,hello,World\n");
        Assert.Equal([new LabeledExample("hello", "World")], d.Examples);
    }
}
