using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;

namespace Pgkd.Core.Teacher;

/// <summary>What a forecast is computed from: the run as submitted, and the teacher it will be sent to.</summary>
public sealed record CostForecastInput
{
    public required RunConfiguration Configuration { get; init; }
    public required LabelSet Labels { get; init; }
    public required string TaskDescription { get; init; }
    public required IReadOnlyList<LabeledExample> Train { get; init; }
    public required IReadOnlyList<LabeledExample> Validation { get; init; }

    /// <summary>The teacher's deployment or model name (what prices and the tokenizer are chosen by).</summary>
    public required string Model { get; init; }

    /// <summary>The tokenizer's name, e.g. <c>o200k_base</c>; reported beside the figures.</summary>
    public required string Tokenizer { get; init; }

    public required TokenCounter CountTokens { get; init; }
    public required TokenPrice Price { get; init; }

    /// <summary>False when the model has no price configured: the dollars are then 0 and say nothing.</summary>
    public bool HasPrice { get; init; } = true;

    /// <summary>The generator's samples per request (<c>Generator:SamplesPerRequest</c>).</summary>
    public int SamplesPerRequest { get; init; } = 16;

    /// <summary><c>Teacher:MaxOutputTokens</c>: when set, the API cuts every reply there, a hard bound on completion tokens.</summary>
    public int? MaxOutputTokens { get; init; }
}

/// <summary>One round's most: its teacher calls and their prompt and completion tokens and dollars.</summary>
public sealed record RoundForecast(int Round, int TeacherCalls, long PromptTokens, long CompletionTokens, decimal CostUsd)
{
    public long TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>
/// The most a run can cost before it starts: per teacher round and in all. <see cref="LastAffordableRound"/> is
/// the last round the run's own budget (<c>teacherTokenBudget</c>, <c>teacherCostBudgetUsd</c>) lets it reach in the
/// worst case, when that is before <c>maxRounds</c>.
/// </summary>
public sealed record CostForecast(
    string Model,
    string Tokenizer,
    bool HasPrice,
    bool BatchApi,
    int SamplesPerRequest,
    long PromptTokensPerCall,
    long CompletionTokensPerSample,
    long? MaxOutputTokens,
    IReadOnlyList<RoundForecast> Rounds,
    long TokenBudget,
    decimal CostBudgetUsd,
    int? LastAffordableRound)
{
    public int TeacherCalls => Rounds.Sum(r => r.TeacherCalls);
    public long PromptTokens => Rounds.Sum(r => r.PromptTokens);
    public long CompletionTokens => Rounds.Sum(r => r.CompletionTokens);
    public long TotalTokens => PromptTokens + CompletionTokens;
    public decimal CostUsd => Rounds.Sum(r => r.CostUsd);
}

/// <summary>
/// The most a run can cost, counted with the teacher model's own tokenizer, before anything is spent. Every round
/// asks for <c>samplesPerRound</c> samples in requests of at most <c>samplesPerRequest</c>
/// (<see cref="ClassAllocation.RequestSizes"/>), one call each. A call's prompt is bounded by the largest prompt the
/// run's data can produce: every optional part shown at its limit, filled with the longest texts of the seed data
/// and numbers with the most digits, plus the reply schema sent with it; or by <c>maxPromptTokens</c>, which the
/// prompt is trimmed to. A call's completion is bounded by <c>Teacher:MaxOutputTokens</c> when set, else by its
/// samples each <c>maxTextLength</c> characters long (the longest the run accepts) at the seed texts' tokens per
/// character, with the longest label, in the reply's JSON: a teacher that writes longer texts than it is asked for
/// still bills them, so only <c>Teacher:MaxOutputTokens</c> makes this a hard cap. Not counted: cached-prompt discounts (they only lower the bill) and the repair turn a malformed reply gets
/// (rare: it shows up in the actual figures after a run). Pure: the tokenizer is passed in.
/// </summary>
public static class CostForecaster
{
    public static CostForecast Forecast(CostForecastInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var config = input.Configuration;
        var count = input.CountTokens;
        var sizes = ClassAllocation.RequestSizes(config.SamplesPerRound, Math.Max(1, input.SamplesPerRequest));

        // A sample is at most maxTextLength characters (the run rejects longer ones, but the teacher bills them): counted
        // at the seed texts' tokens per character, in the reply's JSON with the longest label.
        var longestLabel = input.Labels.Names.MaxBy(n => n.Length)!;
        var seedTexts = input.Train.Concat(input.Validation).Select(e => TextNormalizer.Normalize(e.Text)).ToList();
        var seedChars = seedTexts.Sum(t => t.Length);
        var tokensPerChar = seedChars == 0 ? 1.0 : (double)count(string.Join("\n", seedTexts)) / seedChars;
        var perSample = count(JsonSerializer.Serialize(new { text = "", label = longestLabel }) + ",")
                        + (int)Math.Ceiling(config.MaxTextLength * tokensPerChar);
        var replyFrame = count("""{"samples":[]}""");
        var schema = count(TeacherReplySchema.JsonFor(input.Labels));

        var calls = sizes.Select(samples =>
        {
            var prompt = WorstPromptTokens(input, samples) + schema;
            long completion = input.MaxOutputTokens ?? replyFrame + (long)samples * perSample;
            return (Prompt: (long)prompt, Completion: completion);
        }).ToList();
        var price = config.BatchApi ? input.Price with
        {
            InputPerMillion = input.Price.InputPerMillion * input.Price.BatchMultiplier,
            OutputPerMillion = input.Price.OutputPerMillion * input.Price.BatchMultiplier,
        } : input.Price;
        var perRound = new
        {
            Prompt = calls.Sum(c => c.Prompt),
            Completion = calls.Sum(c => c.Completion),
            Cost = calls.Sum(c => price.Cost(c.Prompt, c.Completion)),
        };
        var rounds = Enumerable.Range(1, config.MaxRounds)
            .Select(r => new RoundForecast(r, calls.Count, perRound.Prompt, perRound.Completion, perRound.Cost))
            .ToList();

        // The planner stops before a round would pass either budget; in the worst case that is after this round.
        int? lastAffordable = null;
        long tokens = 0;
        decimal cost = 0;
        foreach (var round in rounds)
        {
            if (tokens + round.TotalTokens > config.TeacherTokenBudget || cost + round.CostUsd > config.TeacherCostBudgetUsd)
            {
                lastAffordable = round.Round - 1;
                break;
            }
            tokens += round.TotalTokens;
            cost += round.CostUsd;
        }

        return new CostForecast(input.Model, input.Tokenizer, input.HasPrice, config.BatchApi, sizes.DefaultIfEmpty(0).Max(),
            calls.Count == 0 ? 0 : calls.Max(c => c.Prompt), perSample, input.MaxOutputTokens, rounds,
            config.TeacherTokenBudget, config.TeacherCostBudgetUsd, lastAffordable);
    }

    /// <summary>
    /// The prompt tokens of the largest prompt a request for <paramref name="samples"/> samples can have: what
    /// <see cref="TeacherPromptBuilder"/> builds from every optional part at its limit and the longest texts, or the
    /// prompt budget it trims to when that is smaller.
    /// </summary>
    private static int WorstPromptTokens(CostForecastInput input, int samples)
    {
        var config = input.Configuration;
        var labels = input.Labels;
        var options = config.PromptOptions;
        var longestLabel = labels.Names.MaxBy(n => n.Length)!;
        var byLength = input.Validation.Concat(input.Train).OrderByDescending(e => e.Text.Length).ToList();
        // Numbers as long as a double's shortest round-trip form gets (17 significant digits).
        const double Long = 0.12345678901234568;
        var fewShot = labels.Names
            .SelectMany(l => input.Train.Where(e => e.Label == l).OrderByDescending(e => e.Text.Length).Take(options.FewShotPerClass))
            .ToList();
        var mining = config.HardNegatives;
        PredictionSample Sample(LabeledExample e) => new(e.Text, longestLabel, longestLabel, Long);
        var selection = new HardNegativeSelection(
            byLength.Take(mining.TopK).Select(e => new HardNegative(e.Text, longestLabel, longestLabel, Long)).ToList(),
            byLength.Take(mining.CorrectSamples).Select(Sample).ToList(),
            byLength.Take(mining.IncorrectSamples).Select(Sample).ToList());
        var validationCount = Math.Max(1, input.Validation.Count);
        var report = new ValidationReport(validationCount, Long,
            labels.Names.Select(l => new ClassMetrics(l, Long, Long, Long, validationCount)).ToList(),
            Long, Long, labels.Names.Select(_ => (IReadOnlyList<int>)labels.Names.Select(_ => validationCount).ToList()).ToList(),
            10 + Long, Long);
        var prompt = new TeacherPromptInput
        {
            Labels = labels,
            TaskDescription = input.TaskDescription,
            Allocation = ClassAllocation.Balanced(samples, labels.Count),
            FewShotPool = fewShot,
            Report = report,
            Selection = selection,
            Round = config.MaxRounds,
            Seed = config.Seed,
            FewShotSeed = config.Seed,
        };
        var untrimmed = TeacherPromptBuilder.Build(prompt, options with { MaxPromptTokens = int.MaxValue }, input.CountTokens);
        var trimmed = TeacherPromptBuilder.Build(prompt, options, input.CountTokens);
        return Math.Max(Math.Min(untrimmed.EstimatedTokens, options.MaxPromptTokens), trimmed.EstimatedTokens);
    }
}
