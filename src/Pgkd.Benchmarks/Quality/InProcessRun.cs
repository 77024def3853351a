using System.Diagnostics;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Evaluator;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;
using Pgkd.Storage;
using Pgkd.Student;
using Pgkd.Trainer;

namespace Pgkd.Benchmarks.Quality;

/// <summary>One round's figures: the judge (selection part), what the teacher saw (feedback part), and test.</summary>
public sealed record RoundFigures(int Round, double FeedbackAccuracy, double SelectionAccuracy, double SelectionLoss,
    double TestAccuracy, double TestMacroF1, double TestWeightedF1, int Requested, int Accepted, int Rejected, long Tokens,
    decimal CostUsd, double TeacherSeconds, double TrainSeconds, double EvaluateSeconds);

/// <summary>One run of one strategy: every round, the round early stopping chose, and why it stopped.</summary>
/// <paramref name="Code"/> names the build that measured it (<see cref="CodeVersion"/>; null for runs stored before it was recorded).
public sealed record StrategyRunResult(string Mode, int Seed, string Strategy, IReadOnlyList<RoundFigures> Rounds, int BestRound,
    string StopReason, double WallSeconds, string? Code = null)
{
    public RoundFigures Best => Rounds.First(r => r.Round == BestRound);
    public RoundFigures Last => Rounds[^1];
    public int TeacherRounds => Rounds.Count - 1;
    public int Accepted => Rounds.Sum(r => r.Accepted);
    public int Rejected => Rounds.Sum(r => r.Rejected);
    public long Tokens => Rounds.Sum(r => r.Tokens);
}

/// <summary>The benchmark dataset folder, read with the same Core reader the gateway uses.</summary>
public sealed record BenchmarkData(LabelSet Labels, Dataset Train, Dataset Validation, Dataset Test, string Folder)
{
    public static BenchmarkData Load(string folder)
    {
        var labels = LabelSet.FromLines(File.ReadAllText(Path.Combine(folder, "labels.txt")));
        Dataset Read(string name)
        {
            using var stream = File.OpenRead(Path.Combine(folder, name));
            return DatasetReader.ReadJsonl(stream, Path.Combine(folder, name), new DatasetReadOptions { Labels = labels });
        }
        return new BenchmarkData(labels, Read("seed_train.jsonl"), Read("seed_val.jsonl"), Read("test.jsonl"), folder);
    }
}

/// <summary>
/// The services' PGKD loop in one process, so dozens of runs fit on a laptop. It has no round logic of its own: each step is
/// the step code the services' consumers wrap (<see cref="EvaluationStep"/> scoring with ONNX Runtime and mining as
/// <see cref="RunPlanner.MiningFor"/> decides, <see cref="RoundShardRequest.ForRound"/> and <see cref="RoundShardGenerator"/>
/// over HTTP to the teacher, <see cref="TrainingStep"/> with <see cref="StudentTrainer"/>), and every decision (allocation,
/// mining, stopping) comes from the same pure <see cref="RunPlanner"/> on the same <see cref="RoundEvaluation.Outcome"/>. What it
/// leaves out is the broker and blob storage between the steps (the anatomy section measures their share); it also scores
/// the test set every round for the per-round curve, and nothing the run decides ever reads those figures.
/// </summary>
public sealed class InProcessRun(BenchmarkData data, StudentTrainer trainer, RoundShardGenerator generator, PretrainedEmbedder embedder,
    StudentTokenizer tokenizer, int threads, string workDirectory)
{
    private readonly Dictionary<(string Mode, int Seed, double? StoppingShare), (StudentCheckpoint Checkpoint, double Seconds)> _roundZero = new();

    public async Task<StrategyRunResult> RunAsync(Strategy strategy, string mode, int seed, int rounds, int samplesPerRound, int fullEpochs,
        StoppingMetric stoppingMetric, CancellationToken cancellationToken, StudentSettings? studentTemplate = null, double? selectionShare = null)
    {
        var wall = Stopwatch.StartNew();
        var config = strategy.Configure(RunConfiguration.Default with
            {
                MaxRounds = rounds, SamplesPerRound = samplesPerRound, Seed = seed, StoppingMetric = stoppingMetric,
            }, data.Labels.Count);
        if (selectionShare is { } share) config = config with { SelectionShare = share };
        config = config.EnsureValid(data.Labels.Count);
        var parts = config.SplitValidation(data.Validation);
        var template = studentTemplate ?? new StudentSettings();
        // Stopping within a round replaces the planned epochs (StudentSettings.Validate names the two together).
        var student = template with { Mode = mode, EpochsPerRound = mode == "full" && !template.StopsWithinRound ? fullEpochs : null };
        if (student.Validate() is { Count: > 0 } problems) throw new BenchmarkUsageException($"student settings: {string.Join("; ", problems)}");
        var runId = $"bench-{mode}-s{seed}-{strategy.Name}-{Guid.NewGuid():N}"[..48];
        var runDirectory = Path.Combine(workDirectory, runId);
        var heldOut = data.Validation.TextHashes();
        heldOut.UnionWith(data.Test.TextHashes());
        var trainingHashes = data.Train.TextHashes();
        var training = new List<LabeledExample>(data.Train.Examples);

        var figures = new List<RoundFigures>();
        var progress = RunProgress.Start(config);
        StudentCheckpoint checkpoint;
        double trainSeconds;
        var (requested, accepted, rejected, tokens, cost, teacherSeconds) = (0, 0, 0, 0L, 0m, 0.0);
        int? samplesPerRequest = null;
        RunStep step;
        try
        {
            (checkpoint, trainSeconds) = RoundZero(mode, seed, student, config, parts.Feedback);
            for (var round = 0; ; round++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // The evaluator's step (EvaluateRoundConsumer): the feedback part, mined as the planner decides, and the selection part.
                var clock = Stopwatch.StartNew();
                RoundEvaluation evaluation;
                ValidationReport test;
                double evaluateSeconds;
                using (var classifier = EvaluationStep.LoadStudent(checkpoint.Directory, data.Labels, embedder, tokenizer, threads))
                {
                    evaluation = EvaluationStep.Evaluate(classifier, round, nameof(EvaluationSplit.Validation), checkpoint.Directory, parts.Feedback,
                        parts.IsSplit ? parts.Selection : null, data.Labels, RunPlanner.MiningFor(config, round), new Dataset(training));
                    evaluateSeconds = clock.Elapsed.TotalSeconds;
                    // The curve only; never read by the loop.
                    test = EvaluationStep.Evaluate(classifier, round, nameof(EvaluationSplit.Test), checkpoint.Directory, data.Test, null, data.Labels, null).Report;
                }
                var (feedback, judge) = (evaluation.Report, evaluation.JudgeReport);
                figures.Add(new RoundFigures(round, feedback.Accuracy, judge.Accuracy, judge.ValidationLoss, test.Accuracy, test.MacroF1,
                    test.WeightedF1, requested, accepted, rejected, tokens, cost, teacherSeconds, trainSeconds, evaluateSeconds));
                Console.Error.WriteLine($"[quality] {mode} seed {seed} {strategy.Name} round {round}: selection {judge.Accuracy:F4} (loss {judge.ValidationLoss:F4}), " +
                    $"feedback {feedback.Accuracy:F4}, test {test.Accuracy:F4}; teacher {accepted}/{requested} accepted, train {trainSeconds:F0} s; " +
                    $"{evaluation.Guidance.HardNegatives.Count} hard negatives mined for the next round");

                // The orchestrator's decision.
                (progress, step) = strategy.SeedOnly
                    ? (progress, new RunStep.Finish(0, judge.ValidationLoss, StopDecision.StopMaxRounds))
                    : RunPlanner.Next(config, progress, evaluation.Outcome(tokens, cost));
                if (step is not RunStep.GenerateRound generate) break;

                // The generator's step (GenerateRoundConsumer): prompt from the guidance, validate the replies.
                var request = RoundShardRequest.ForRound(runId, generate.Round, config, data.Labels, RunManifest.DefaultTaskDescription,
                    generate.Allocation, generate.PromptOptions, data.Train, evaluation.Report, evaluation.Guidance, trainingHashes, heldOut,
                    samplesPerRequest, generate.Bounds);
                var ledger = TeacherUsageLedger.ForRun(config, progress.TeacherTokensUsed, progress.TeacherCostUsd);
                var teacherClock = Stopwatch.StartNew();
                var shard = await generator.GenerateAsync(request, ledger, cancellationToken);
                teacherSeconds = teacherClock.Elapsed.TotalSeconds;
                samplesPerRequest = shard.SamplesPerRequest;
                (requested, accepted, rejected) = (shard.Requested.Sum(), shard.Examples.Count, shard.Rejected.Values.Sum());
                (tokens, cost) = (shard.PromptTokens + shard.CompletionTokens, shard.CostUsd);
                training.AddRange(shard.Examples.Examples);
                trainingHashes.UnionWith(shard.Examples.TextHashes());

                // The trainer's step (TrainRoundConsumer): everything so far, from the previous round's checkpoint in full mode.
                var trainClock = Stopwatch.StartNew();
                checkpoint = trainer.Train(TrainingStep.Options(student, config, data.Labels.Count, generate.Round, threads, "auto"), training, data.Labels,
                    Path.Combine(runDirectory, $"round-{generate.Round}"), student.ContinuesFromPreviousRound ? checkpoint : null,
                    cancellationToken: cancellationToken, validation: student.StopsWithinRound ? parts.Feedback.Examples : null);
                trainSeconds = trainClock.Elapsed.TotalSeconds;
            }
        }
        finally
        {
            if (Directory.Exists(runDirectory)) Directory.Delete(runDirectory, recursive: true);
        }
        var finish = (RunStep.Finish)step;
        return new StrategyRunResult(mode, seed, strategy.Name, figures, finish.BestRound, finish.Reason.ToString(), wall.Elapsed.TotalSeconds,
            CodeVersion.Current);
    }

    /// <summary>
    /// Round 0 depends only on mode and seed (the seed set, the round-0 training seed), so strategies share it; stopping within
    /// the round also reads the feedback part, so then strategies that split the validation data alike share it.
    /// </summary>
    private (StudentCheckpoint, double) RoundZero(string mode, int seed, StudentSettings student, RunConfiguration config, Dataset feedback)
    {
        var key = (mode, seed, student.StopsWithinRound ? config.SelectionShare ?? RunConfiguration.SelectionShareFor(data.Validation.Count) : (double?)null);
        if (_roundZero.TryGetValue(key, out var cached)) return cached;
        var clock = Stopwatch.StartNew();
        var checkpoint = trainer.Train(TrainingStep.Options(student, config, data.Labels.Count, 0, threads, "auto"), data.Train.Examples, data.Labels,
            Path.Combine(workDirectory, $"round0-{mode}-s{seed}-{key.Item3?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "any"}"), validation: student.StopsWithinRound ? feedback.Examples : null);
        return _roundZero[key] = (checkpoint, clock.Elapsed.TotalSeconds);
    }
}
