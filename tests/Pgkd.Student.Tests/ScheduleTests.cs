using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Issue 20.1: a round's schedule that follows the classes (a floor on steps) and a head that starts at the class centroids.</summary>
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
}
