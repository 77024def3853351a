using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;

namespace Pgkd.Core.Tests.Teacher;

public class CostForecastTests
{
    private static readonly LabelSet Labels = new("World", "Sports", "Business", "Sci/Tech");

    private static readonly LabeledExample[] Train = Labels.Names
        .SelectMany(l => Enumerable.Range(0, 8).Select(i => new LabeledExample($"{l} story {i}: " + string.Concat(Enumerable.Repeat("word ", i * 7)), l)))
        .ToArray();

    private static readonly LabeledExample[] Validation = Labels.Names
        .SelectMany(l => Enumerable.Range(0, 10).Select(i => new LabeledExample($"{l} validation text {i} " + string.Concat(Enumerable.Repeat("more ", i * 5)), l)))
        .ToArray();

    private static CostForecastInput Input(RunConfiguration? config = null, int? maxOutput = null) => new()
    {
        Configuration = config ?? new RunConfiguration { MaxRounds = 3, SamplesPerRound = 40 },
        Labels = Labels,
        TaskDescription = "Classify news by topic.",
        Train = Train,
        Validation = Validation,
        Model = "gpt-4o-mini",
        Tokenizer = "chars/4",
        CountTokens = TokenCounters.CharactersOverFour,
        Price = new TokenPrice(0.15m, 0.60m),
        SamplesPerRequest = 16,
        MaxOutputTokens = maxOutput,
    };

    [Theory]
    [InlineData(16, 16, new[] { 16 })]
    [InlineData(40, 16, new[] { 14, 13, 13 })]
    [InlineData(17, 16, new[] { 9, 8 })]
    [InlineData(0, 16, new int[0])]
    public void Requests_split_a_round_as_evenly_as_possible(int total, int size, int[] expected) =>
        Assert.Equal(expected, ClassAllocation.RequestSizes(total, size));

    [Fact]
    public void Every_teacher_round_has_its_calls_tokens_and_dollars_and_the_total_adds_them_up()
    {
        var f = CostForecaster.Forecast(Input());

        Assert.Equal([1, 2, 3], f.Rounds.Select(r => r.Round));
        Assert.All(f.Rounds, r => Assert.Equal(3, r.TeacherCalls)); // 40 samples in requests of at most 16
        Assert.Equal(9, f.TeacherCalls);
        Assert.Equal(f.Rounds.Sum(r => r.PromptTokens), f.PromptTokens);
        Assert.Equal(f.Rounds.Sum(r => r.CompletionTokens), f.CompletionTokens);
        var round = f.Rounds[0];
        Assert.Equal((round.PromptTokens * 0.15m + round.CompletionTokens * 0.60m) / 1_000_000m, round.CostUsd);
        Assert.Equal(3 * round.CostUsd, f.CostUsd);
        Assert.Null(f.LastAffordableRound);
        Assert.Equal(14, f.SamplesPerRequest);
    }

    [Fact]
    public void The_prompt_bound_covers_every_prompt_the_runs_data_can_build()
    {
        var config = new RunConfiguration { MaxRounds = 3, SamplesPerRound = 16 };
        var f = CostForecaster.Forecast(Input(config));
        var schema = TokenCounters.CharactersOverFour(TeacherReplySchema.JsonFor(Labels));
        var random = new Random(5);
        for (var i = 0; i < 50; i++)
        {
            // A real round's prompt: hard negatives and samples from validation texts, a report with real-looking numbers.
            var picks = Validation.OrderBy(_ => random.Next()).ToArray();
            var prompt = TeacherPromptBuilder.Build(new TeacherPromptInput
            {
                Labels = Labels,
                TaskDescription = "Classify news by topic.",
                Allocation = ClassAllocation.Allocate(16, [random.NextDouble(), random.NextDouble(), random.NextDouble(), random.NextDouble()], 1),
                FewShotPool = Train,
                Report = TestSupport.ReportWithF1([random.NextDouble(), random.NextDouble(), random.NextDouble(), random.NextDouble()],
                    loss: random.NextDouble() * 3, accuracy: random.NextDouble(), names: Labels.Names.ToArray()),
                Selection = new HardNegativeSelection(
                    picks.Take(16).Select(e => new HardNegative(e.Text, e.Label, "Business", 0.5 + random.NextDouble() / 2)).ToArray(),
                    picks.Skip(16).Take(4).Select(e => new PredictionSample(e.Text, e.Label, e.Label, random.NextDouble())).ToArray(),
                    picks.Skip(20).Take(4).Select(e => new PredictionSample(e.Text, e.Label, "World", random.NextDouble())).ToArray()),
                Round = 1 + i % 3,
                Seed = i,
                FewShotSeed = i,
            }, config.PromptOptions, TokenCounters.CharactersOverFour);
            Assert.True(prompt.EstimatedTokens + schema <= f.PromptTokensPerCall,
                $"prompt {i}: {prompt.EstimatedTokens} + schema {schema} tokens over the bound {f.PromptTokensPerCall}");
        }
    }

    [Fact]
    public void The_prompt_bound_never_passes_the_prompt_budget_that_prompts_are_trimmed_to()
    {
        var small = new RunConfiguration { MaxRounds = 1, SamplesPerRound = 16, MaxPromptTokens = 1000 };
        var f = CostForecaster.Forecast(Input(small));
        var schema = TokenCounters.CharactersOverFour(TeacherReplySchema.JsonFor(Labels));
        Assert.Equal(1000 + schema, f.PromptTokensPerCall);
    }

    [Fact]
    public void MaxOutputTokens_bounds_each_calls_completion()
    {
        var f = CostForecaster.Forecast(Input(maxOutput: 500));
        Assert.All(f.Rounds, r => Assert.Equal(3 * 500, r.CompletionTokens));
    }

    [Fact]
    public void A_completion_bound_fits_samples_of_the_longest_text_the_run_accepts()
    {
        // chars/4 on seed texts gives about 0.25 tokens a character: a 400-character sample is about 100 tokens plus its JSON.
        var f = CostForecaster.Forecast(Input(new RunConfiguration { MaxRounds = 1, SamplesPerRound = 16, MaxTextLength = 400 }));
        var json = TokenCounters.CharactersOverFour("""{"text":"","label":"Business"},""");
        Assert.InRange(f.CompletionTokensPerSample, json + 90, json + 130);
        Assert.Equal(TokenCounters.CharactersOverFour("""{"samples":[]}""") + 16 * f.CompletionTokensPerSample, f.Rounds[0].CompletionTokens);
        var longer = CostForecaster.Forecast(Input(new RunConfiguration { MaxRounds = 1, SamplesPerRound = 16, MaxTextLength = 800 }));
        Assert.True(longer.CompletionTokensPerSample > f.CompletionTokensPerSample + 80);
    }

    [Fact]
    public void The_batch_api_halves_the_dollars_not_the_tokens()
    {
        var direct = CostForecaster.Forecast(Input());
        var batch = CostForecaster.Forecast(Input(new RunConfiguration { MaxRounds = 3, SamplesPerRound = 40, BatchApi = true }));
        Assert.Equal(direct.TotalTokens, batch.TotalTokens);
        Assert.Equal(direct.CostUsd / 2, batch.CostUsd);
    }

    [Fact]
    public void A_budget_smaller_than_the_worst_case_names_the_last_round_it_affords()
    {
        var perRound = CostForecaster.Forecast(Input()).Rounds[0].TotalTokens;
        var f = CostForecaster.Forecast(Input(new RunConfiguration { MaxRounds = 3, SamplesPerRound = 40, TeacherTokenBudget = 2 * perRound + 1 }));
        Assert.Equal(2, f.LastAffordableRound);
    }
}
