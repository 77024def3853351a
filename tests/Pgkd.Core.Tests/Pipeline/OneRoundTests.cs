using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;

namespace Pgkd.Core.Tests.Pipeline;

/// <summary>
/// One PGKD round the way the services compose the core: read data, evaluate, plan, mine, prompt,
/// let an emulated teacher answer from the guidance block, parse, grow the training set.
/// </summary>
public class OneRoundTests
{
    private const string Train = """
        {"text":"Summit leaders meet in Geneva","label":"World"}
        {"text":"Elections held across the region","label":"World"}
        {"text":"Striker scores twice in derby","label":"Sports"}
        {"text":"Champions lift the trophy again","label":"Sports"}
        {"text":"Shares climb after earnings beat","label":"Business"}
        {"text":"Retailer cuts jobs as sales slow","label":"Business"}
        {"text":"New chip doubles battery life","label":"Sci/Tech"}
        {"text":"Probe sends images from Mars","label":"Sci/Tech"}
        """;

    private const string Validation = """
        {"text":"Ministers sign a trade pact","label":"World"}
        {"text":"Coach resigns after losing run","label":"Sports"}
        {"text":"Bank raises interest rates","label":"Business"}
        {"text":"Software giant buys chip startup","label":"Business"}
        {"text":"Telescope spots distant galaxy","label":"Sci/Tech"}
        """;

    [Fact]
    public void A_round_goes_from_evaluation_to_a_grown_training_set()
    {
        var labels = AgNews.Labels;
        var read = new DatasetReadOptions { Labels = labels };
        var train = DatasetReader.ReadJsonl(TestSupport.StreamOf(Train), "seed_train.jsonl", read);
        var validation = DatasetReader.ReadJsonl(TestSupport.StreamOf(Validation), "seed_val.jsonl", read);
        var config = RunConfiguration.Default.EnsureValid(labels.Count);

        // Round 0: the student confuses the tech acquisition with Sci/Tech, confidently.
        double[][] probabilities =
        [
            [0.85, 0.05, 0.05, 0.05],
            [0.05, 0.85, 0.05, 0.05],
            [0.05, 0.05, 0.80, 0.10],
            [0.02, 0.02, 0.06, 0.90],
            [0.05, 0.05, 0.10, 0.80],
        ];
        var truth = validation.Examples.Select(e => labels.IndexOf(e.Label)).ToArray();
        var report = ClassificationMetrics.Evaluate(truth, probabilities, labels);
        Assert.Equal(0.8, report.Accuracy, 1e-12);

        var (progress, step) = RunPlanner.Next(config, RunProgress.Start(config), new RoundOutcome(0, report));
        var generate = Assert.IsType<RunStep.GenerateRound>(step);
        Assert.Equal(config.SamplesPerRound, generate.Allocation.Sum());
        Assert.Equal(generate.Allocation.Max(), generate.Allocation[2]); // Business (F1 0.67) gets the most

        var mined = HardNegativeMiner.Mine(validation.Examples, probabilities, labels, RunPlanner.MiningFor(config, 0));
        var hard = Assert.Single(mined.HardNegatives);
        Assert.Equal(new HardNegative("Software giant buys chip startup", "Business", "Sci/Tech", 0.90), hard);

        var prompt = TeacherPromptBuilder.Build(new TeacherPromptInput
        {
            Labels = labels,
            TaskDescription = "Classify news headlines by topic.",
            Allocation = generate.Allocation,
            FewShotPool = train.Examples,
            Report = report,
            Selection = mined,
            Round = generate.Round,
            Seed = config.SeedForRound(generate.Round),
        }, generate.PromptOptions);
        Assert.True(prompt.WithinBudget);

        // An emulated teacher follows the guidance block, and (badly) also copies the hard negative.
        Assert.True(TeacherPromptBuilder.TryExtractGuidance(prompt.User, out var guidance));
        var samples = guidance!.Allocation
            .SelectMany(a => Enumerable.Range(0, a.Count).Select(i => new { text = $"Fresh {a.Label} headline number {i}", label = a.Label }))
            .Append(new { text = hard.Text, label = hard.TrueLabel });
        var reply = "Here you go:\n```json\n" + JsonSerializer.Serialize(new { samples }) + "\n```";

        var parsed = TeacherReplyParser.Parse(reply, config.ReplyContext(labels, train.TextHashes(), validation.TextHashes(), maxItems: 100));
        Assert.Equal(config.SamplesPerRound, parsed.Accepted.Count);
        Assert.Equal(1, parsed.RejectTally[RejectReason.HeldOutLeakage]);

        var grown = train.Append(parsed.Accepted);
        Assert.Equal(8 + config.SamplesPerRound, grown.Count);
        Assert.NotEqual(train.ContentHash, grown.ContentHash);
        Assert.Equal(0, progress.Stopping.BestRound);
    }
}
