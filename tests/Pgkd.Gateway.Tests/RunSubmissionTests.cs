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
        // Four validation texts: far below the 1,000 from which the default splits, so one set does both jobs, and the
        // resolved share is what the run stores.
        Assert.False(submission.ValidationParts.IsSplit);
        Assert.Equal(0, submission.Configuration.SelectionShare);
    }

    [Fact]
    public void A_given_selection_share_splits_validation_into_feedback_and_selection()
    {
        var submission = RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "configuration": {"selectionShare": 0.5} }"""));
        Assert.True(submission.ValidationParts.IsSplit);
        Assert.Equal(2, submission.ValidationParts.Feedback.Count);
        Assert.Equal(["Sports", "World"], submission.ValidationParts.Selection.Examples.Select(e => e.Label).Order());
    }

    [Fact]
    public void The_default_selection_share_follows_the_size_of_the_validation_set()
    {
        string Lines(int n) => JsonSerializer.Serialize(string.Join("\n", Enumerable.Range(0, n).Select(i =>
            JsonSerializer.Serialize(new { text = $"validation text number {i}", label = i % 2 == 0 ? "World" : "Sports" }))));
        var small = RunSubmissionParser.Parse(Request($$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Lines(RunConfiguration.MinValidationForSplit - 1)}} }"""));
        Assert.Equal(0, small.Configuration.SelectionShare);
        Assert.False(small.ValidationParts.IsSplit);
        var large = RunSubmissionParser.Parse(Request($$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Lines(RunConfiguration.MinValidationForSplit)}} }"""));
        Assert.Equal(RunConfiguration.DefaultSelectionShare, large.Configuration.SelectionShare);
        Assert.Equal(RunConfiguration.MinValidationForSplit / 2, large.ValidationParts.Selection.Count);
    }

    [Fact]
    public void A_pool_is_checked_line_by_line_and_loses_the_runs_own_texts()
    {
        var submission = RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "pool": [{"text": "Ministers sign a treaty", "label": "World"}, {"text": " Summit  talks stall", "label": "world"}, {"text": "The team won the cup", "label": "Sports"}, {"text": "A late winner", "label": "Sports"}] }"""));
        // The validation text (extra spaces) and the training text are gone, compared normalised: the teacher must not hand them back.
        Assert.Equal(["Ministers sign a treaty", "A late winner"], submission.Pool!.Examples.Select(e => e.Text));

        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "pool": "{\"text\": \"Ministers sign a treaty\", \"label\": \"World\"}\n{\"text\": \"Rain all week\", \"label\": \"Weather\"}" }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("pool line 2:", StringComparison.Ordinal) && p.Contains("Weather"));
    }

    [Fact]
    public void A_validation_set_too_small_to_split_is_refused_naming_the_label_and_the_way_out()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": [{"text": "Summit talks stall", "label": "World"}, {"text": "Striker scores twice", "label": "Sports"}, {"text": "Keeper saves a penalty", "label": "Sports"}], "configuration": {"selectionShare": 0.5} }""")));
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
    public void Student_settings_that_stopping_within_a_round_would_ignore_are_named()
    {
        var error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "student": {"mode": "full", "validationPatience": 2, "epochsPerRound": 3} }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("student: epochsPerRound and seedEpochs do not apply with validationPatience", StringComparison.Ordinal));
        error = Assert.Throws<RunSubmissionException>(() => RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "student": {"maxEpochs": 12} }""")));
        Assert.Contains(error.Problems, p => p.StartsWith("student: maxEpochs caps a round that stops on validation loss", StringComparison.Ordinal));
        var submission = RunSubmissionParser.Parse(Request(
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "student": {"validationPatience": 2, "maxEpochs": 12, "classBalancedBatches": true} }"""));
        Assert.Equal(12, submission.Student.EpochCapFor(0));
        Assert.True(submission.Student.BalancesClasses);
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
