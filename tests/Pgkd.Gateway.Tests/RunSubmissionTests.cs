using System.Text.Json;
using Pgkd.Core.Run;
using Pgkd.Gateway.Runs;

namespace Pgkd.Gateway.Tests;

/// <summary>Run creation rejects bad input with every problem named, before anything is stored.</summary>
public sealed class RunSubmissionTests
{
    private static RunRequest Request(string json) =>
        JsonSerializer.Deserialize<RunRequest>(json, RunSubmissionParser.Json)!;

    private const string Labels = """["World", {"name": "Sports", "description": "games and athletes"}]""";
    private const string Train = """[{"text": "Elections were held abroad", "label": "World"}, {"text": "The team won the cup", "label": "sports"}]""";
    private const string Validation = """[{"text": "Summit talks stall", "label": "World"}, {"text": "Striker scores twice", "label": "Sports"}, {"text": "Envoys meet again", "label": "World"}, {"text": "Keeper saves a penalty", "label": "Sports"}]""";

    [Fact]
    public void A_valid_request_gives_labels_datasets_and_configuration()
    {
        var submission = RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "configuration": {"maxRounds": 2, "strategy": "RandomAugmentation"} }"""));
        Assert.Equal(["World", "Sports"], submission.Labels.Names);
        Assert.Equal("games and athletes", submission.Labels.Labels[1].Description);
        Assert.Equal(2, submission.Train.Count);
        Assert.Equal("Sports", submission.Train.Examples[1].Label); // resolved case-insensitively to the label's own name
        Assert.Equal(2, submission.Configuration.MaxRounds);
        Assert.Equal(RunStrategy.RandomAugmentation, submission.Configuration.Strategy);
        Assert.Null(submission.Test);
        // The default run splits validation per label into the feedback part (teacher) and the selection part (judge).
        Assert.True(submission.ValidationParts.IsSplit);
        Assert.Equal(2, submission.ValidationParts.Feedback.Count);
        Assert.Equal(["Sports", "World"], submission.ValidationParts.Selection.Examples.Select(e => e.Label).Order());
    }

    [Fact]
    public void A_validation_set_too_small_to_split_is_refused_naming_the_label_and_the_way_out()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": [{"text": "Summit talks stall", "label": "World"}, {"text": "Striker scores twice", "label": "Sports"}, {"text": "Keeper saves a penalty", "label": "Sports"}]}""")));
        var problem = Assert.Single(error.Problems);
        Assert.StartsWith("validation: selectionShare 0.5 leaves the feedback part", problem);
        Assert.Contains("\"World\"", problem);
        Assert.Contains("set SelectionShare to 0", problem);

        var single = RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": [{"text": "Summit talks stall", "label": "World"}], "configuration": {"selectionShare": 0} }"""));
        Assert.False(single.ValidationParts.IsSplit);
    }

    [Fact]
    public void A_JSONL_string_is_accepted_too()
    {
        var jsonl = JsonSerializer.Serialize("{\"text\":\"Elections abroad\",\"label\":\"World\"}\n{\"text\":\"Cup final\",\"label\":\"Sports\"}\n");
        var submission = RunSubmissionParser.Parse(Request($$"""{"labels": {{Labels}}, "train": {{jsonl}}, "validation": {{Validation}} }"""));
        Assert.Equal(2, submission.Train.Count);
    }

    [Fact]
    public void A_malformed_line_is_named_with_its_dataset_and_line_number()
    {
        var train = JsonSerializer.Serialize("{\"text\":\"ok text\",\"label\":\"World\"}\n{\"text\": broken\n{\"text\":\"Cup\",\"label\":\"Sports\"}\n");
        var error = Assert.Throws<RunSubmissionException>(() =>
            RunSubmissionParser.Parse(Request($$"""{"labels": {{Labels}}, "train": {{train}}, "validation": {{Validation}} }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("train line 2:"));
    }

    [Fact]
    public void Unknown_labels_are_named_with_the_item_position()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": [{"text": "x y z", "label": "World"}, {"text": "Market news", "label": "Business"}]}""")));
        var problem = Assert.Single(error.Problems);
        Assert.StartsWith("validation line 2:", problem);
        Assert.Contains("Business", problem);
    }

    [Fact]
    public void A_label_without_training_examples_is_refused()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": ["World", "Sports", "Business"], "train": {{Train}}, "validation": {{Validation}} }""")));
        Assert.Contains("train: label \"Business\" has no examples", error.Problems);
    }

    [Fact]
    public void Duplicate_labels_are_refused()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": ["World", "world"], "train": {{Train}}, "validation": {{Validation}} }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("labels:") && p.Contains("twice"));
    }

    [Fact]
    public void An_empty_validation_set_is_refused()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": []}""")));
        Assert.Contains(error.Problems, p => p.StartsWith("validation: the validation set is empty"));
    }

    [Fact]
    public void A_bad_configuration_field_is_named()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "configuration": {"maxRounds": 0} }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("configuration: maxRounds"));
    }

    [Fact]
    public void A_misspelt_configuration_field_is_an_error_not_a_silent_default()
    {
        var error = Assert.ThrowsAny<JsonException>(() => Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "configuration": {"maxRound": 3} }"""));
        Assert.Contains("maxRound", error.Message);
    }

    [Fact]
    public void Every_problem_is_reported_at_once()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": [{"text": "", "label": "World"}], "validation": [{"text": "fine text", "label": "Nope"}], "configuration": {"patience": -1} }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("train line 1:"));
        Assert.Contains(error.Problems, p => p.StartsWith("validation line 1:"));
        Assert.Contains(error.Problems, p => p.StartsWith("configuration: patience"));
    }
}
