using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Issue 20.1: a round's schedule that follows the classes (a floor on steps, class-balanced batches, stopping on the validation loss) and a head that starts at the class centroids.</summary>
public sealed class ScheduleTests
{
    private static readonly StudentTrainingOptions Head = new()
    {
        Mode = StudentTrainingMode.Head,
        Epochs = 1,
        BatchSize = 4,
        MaxLength = 64,
        LearningRate = 1e-2,
        Threads = 2,
        Seed = 3,
        ProgressEverySteps = 1,
    };

    [Fact]
    public void CentroidHead_ClassifiesByTheNearestCentroidDirection_DespiteASharedOffset()
    {
        // Three classes in 4 dimensions, all carrying a large shared offset (as mean-pooled MiniLM vectors do).
        float[] offset = [10, 10, 10, 10];
        float[] V(params float[] x) => x.Select((v, d) => v + offset[d]).ToArray();
        float[][] vectors = [V(1, 0, 0, 0), V(1.2f, 0.1f, 0, 0), V(0, 1, 0, 0), V(0.1f, 0.9f, 0, 0), V(0, 0, 1, 0), V(0, 0.1f, 1.1f, 0)];
        long[] targets = [0, 0, 1, 1, 2, 2];
        var (weight, bias) = StudentTrainer.CentroidHead(vectors, targets, 4, scale: 10);

        float[] Logits(float[] x) => Enumerable.Range(0, 4).Select(c => bias[c] + Enumerable.Range(0, 4).Sum(d => weight[c * 4 + d] * x[d])).ToArray();
        int Argmax(float[] l) => Array.IndexOf(l, l.Max());
        for (var i = 0; i < vectors.Length; i++) Assert.Equal(targets[i], Argmax(Logits(vectors[i])));
        // Points nearer one class's side than another's go to it, wherever the shared offset puts them.
        Assert.Equal(0, Argmax(Logits(V(0.6f, 0.3f, 0.1f, 0))));
        Assert.Equal(2, Argmax(Logits(V(0.1f, 0.2f, 0.7f, 0))));
        // Class 3 has no examples: zero direction and a logit of -scale, below the classes that have some.
        Assert.All(weight.Skip(12), w => Assert.Equal(0f, w));
        Assert.Equal(-10f, bias[3]);
        Assert.True(Logits(vectors[0])[0] > 0);
        Assert.Throws<ArgumentException>(() => StudentTrainer.CentroidHead(vectors, [0, 1], 4, 10));
    }

    [Fact]
    public void MinSteps_AddsEpochsUntilReached_AndMaxStepsStillCaps()
    {
        var reports = new List<StudentTrainingProgress>();
        TestSupport.Trainer.Train(Head with { MinSteps = 7 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("min-steps"), progress: reports.Add);
        var training = reports.Where(r => r.Phase == StudentTrainingPhase.Training).ToArray();
        Assert.Equal(7, training[^1].Step); // 8 texts in batches of 4: 2 steps an epoch, so 4 epochs, the last one cut at 7
        Assert.All(training, r => Assert.Equal(7, r.TotalSteps));
        Assert.Equal(4, training[^1].Epoch);
        Assert.Equal(4, training[^1].Epochs);

        reports.Clear();
        TestSupport.Trainer.Train(Head with { MinSteps = 7, MaxSteps = 3 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("min-max"), progress: reports.Add);
        Assert.Equal(3, reports.Where(r => r.Phase == StudentTrainingPhase.Training).Max(r => r.Step));
        Assert.Throws<ArgumentException>(() => TestSupport.Trainer.Train(Head with { MinSteps = -1 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("min-bad")));
    }

    [Fact]
    public void ACentroidStart_ClassifiesTheTrainingTexts_BeforeAnyLearning()
    {
        // Learning rate 0: the checkpoint is the head as it started.
        var still = Head with { LearningRate = 0 };
        var centroids = TestSupport.Trainer.Train(still with { HeadStart = HeadStart.ClassCentroids }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("start-centroids"));
        var random = TestSupport.Trainer.Train(still, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("start-random"));
        double Accuracy(StudentCheckpoint c) =>
            TestSupport.Trainer.PredictProbabilities(c, AgNews.Tiny.Select(e => e.Text).ToArray())
                .Select((p, i) => AgNews.Labels.Names[Array.IndexOf(p, p.Max())] == AgNews.Tiny[i].Label ? 1.0 : 0.0).Average();
        Assert.Equal(1.0, Accuracy(centroids)); // two texts a class: each lies nearer its own centroid
        Assert.True(Accuracy(random) < 0.75, $"a random head scored {Accuracy(random)} on the training texts");
    }

    [Fact]
    public void ClassBalancedEpochs_GiveEveryClassAnEqualShare_AndSeeEveryExampleOverEpochs()
    {
        // One flooded class (12 examples) and two starved ones (2 each).
        long[] targets = [.. Enumerable.Repeat(0L, 12), 1, 1, 2, 2];
        var epochs = new ClassBalancedEpochs(targets, new Random(5));
        var seen = new HashSet<int>();
        for (var e = 0; e < 3; e++)
        {
            var epoch = epochs.Next(16);
            Assert.Equal(16, epoch.Length);
            var perClass = epoch.GroupBy(i => targets[i]).ToDictionary(g => g.Key, g => g.Count());
            Assert.All(new long[] { 0, 1, 2 }, c => Assert.InRange(perClass.GetValueOrDefault(c), 5, 6)); // 16 / 3, the remainder at random
            // A starved class repeats its examples: each of its 2 appears (a deck of 2 dealt 5 or 6 times holds both at least twice).
            Assert.All(new[] { 12, 13, 14, 15 }, i => Assert.InRange(epoch.Count(x => x == i), 1, 4));
            seen.UnionWith(epoch);
        }
        Assert.Equal(16, seen.Count); // the flooded class's 12 are all dealt within 3 epochs (at least 15 draws)
        // Seeded: the same epochs again.
        var again = new ClassBalancedEpochs(targets, new Random(5));
        var first = new ClassBalancedEpochs(targets, new Random(5)).Next(16);
        Assert.Equal(first, again.Next(16));
    }

    [Fact]
    public void ClassBalancedBatches_TrainOnTheBalancedEpochs()
    {
        // 6 texts of one class, 2 of each other: balanced epochs give it a quarter of the draws, shuffled ones half. The wiring:
        // the option must reach the loop (ClassBalancedEpochs' own test checks the shares).
        var skewed = AgNews.Tiny.Concat(AgNews.Tiny.Where(e => e.Label == AgNews.Tiny[0].Label).Select(e => e with { Text = e.Text + " (again)" }))
            .Concat(AgNews.Tiny.Where(e => e.Label == AgNews.Tiny[0].Label).Select(e => e with { Text = e.Text + " (once more)" })).ToArray();
        var shuffled = TestSupport.Trainer.Train(Head with { Epochs = 3 }, skewed, AgNews.Labels, TestSupport.NewTempDirectory("batches-shuffled"));
        var balanced = TestSupport.Trainer.Train(Head with { Epochs = 3, BatchSampling = BatchSampling.ClassBalanced }, skewed, AgNews.Labels,
            TestSupport.NewTempDirectory("batches-balanced"));
        var texts = AgNews.Tiny.Select(e => e.Text).ToArray();
        var a = TestSupport.Trainer.PredictProbabilities(shuffled, texts).SelectMany(p => p).ToArray();
        var b = TestSupport.Trainer.PredictProbabilities(balanced, texts).SelectMany(p => p).ToArray();
        Assert.True(a.Zip(b).Max(t => Math.Abs(t.First - t.Second)) > 1e-4, "balanced batches trained the same weights as shuffled ones");
    }

    [Fact]
    public void StoppingWithinARound_StopsWhenTheValidationLossStalls_AndStoresTheBestEpoch()
    {
        // Validation texts labelled with the next class: the better the head learns the training labels, the higher this loss.
        var wrong = AgNews.Tiny.Select(e => e with { Label = AgNews.Labels.Names[(AgNews.Labels.IndexOf(e.Label) + 1) % AgNews.Labels.Count] }).ToArray();
        var reports = new List<StudentTrainingProgress>();
        var options = Head with { Epochs = 30, ValidationPatience = 2 };
        var checkpoint = TestSupport.Trainer.Train(options, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("stop-head"),
            progress: reports.Add, validation: wrong);
        var done = reports.Single(r => r.Phase == StudentTrainingPhase.Done);
        var perEpoch = reports.Where(r => r.ValidationLoss is not null && r.Phase == StudentTrainingPhase.Training).ToArray();
        Assert.True(done.Epoch < 30, $"ran all {done.Epoch} epochs");
        Assert.Equal(done.Epoch, perEpoch.Length); // one validation loss per epoch run
        Assert.Equal(2, done.Epoch - done.BestEpoch); // stopped after 2 epochs without improvement
        Assert.Equal(perEpoch.Min(r => r.ValidationLoss), done.ValidationLoss);
        Assert.True(perEpoch[^1].ValidationLoss > done.ValidationLoss + 1e-3, "the last epoch was as good as the best: the test would not see a missing restore");
        // The stored head is the best epoch's: its loss on the validation texts is the one reported, not the last epoch's.
        Assert.Equal(done.ValidationLoss!.Value, ValidationLoss(checkpoint, wrong), 3);

        Assert.Throws<ArgumentException>(() => TestSupport.Trainer.Train(options, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("stop-none")));
        Assert.Throws<ArgumentException>(() => TestSupport.Trainer.Train(options with { ValidationPatience = -1 }, AgNews.Tiny, AgNews.Labels,
            TestSupport.NewTempDirectory("stop-bad"), validation: wrong));
    }

    [Fact]
    public void StoppingWithinARound_InFullMode_KeepsTheBestEpochOfEveryWeight()
    {
        var wrong = AgNews.Tiny.Select(e => e with { Label = AgNews.Labels.Names[(AgNews.Labels.IndexOf(e.Label) + 1) % AgNews.Labels.Count] }).ToArray();
        var reports = new List<StudentTrainingProgress>();
        var options = Head with { Mode = StudentTrainingMode.Full, Epochs = 4, ValidationPatience = 1, LearningRate = 5e-4, MaxLength = 32 };
        var checkpoint = TestSupport.Trainer.Train(options, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("stop-full"),
            progress: reports.Add, validation: wrong);
        var done = reports.Single(r => r.Phase == StudentTrainingPhase.Done);
        Assert.NotNull(done.BestEpoch);
        Assert.InRange(done.Epoch, done.BestEpoch!.Value, done.BestEpoch.Value + 1);
        var perEpoch = reports.Where(r => r.ValidationLoss is not null && r.Phase == StudentTrainingPhase.Training).ToArray();
        Assert.True(perEpoch[^1].ValidationLoss > done.ValidationLoss + 1e-3, "the last epoch was as good as the best: the test would not see a missing restore");
        Assert.Equal(done.ValidationLoss!.Value, ValidationLoss(checkpoint, wrong), 2);
    }

    private static double ValidationLoss(StudentCheckpoint checkpoint, IReadOnlyList<Pgkd.Core.Data.LabeledExample> examples) =>
        TestSupport.Trainer.PredictProbabilities(checkpoint, examples.Select(e => e.Text).ToArray())
            .Select((p, i) => -Math.Log(p[AgNews.Labels.IndexOf(examples[i].Label)])).Average();
}
