using Pgkd.Core.Data;
using TorchSharp;
using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Points 3 and 6: training options, repeatability, continuation, progress, checkpoint and ONNX export parity.</summary>
public sealed class TrainingTests
{
    private static readonly StudentTrainingOptions TinyFull = new()
    {
        Mode = StudentTrainingMode.Full,
        Epochs = 1,
        BatchSize = 4,
        MaxLength = 32,
        LearningRate = 5e-4, // large on purpose: after 2 steps the weights must have moved visibly
        WarmupFraction = 0.5,
        Threads = 2,
        Seed = 7,
        ProgressEverySteps = 1,
    };

    private static readonly StudentTrainingOptions HeadOptions = new()
    {
        Mode = StudentTrainingMode.Head,
        Epochs = 20,
        BatchSize = 4,
        MaxLength = 64,
        LearningRate = 1e-2,
        Threads = 2,
        Seed = 3,
        ProgressEverySteps = 5,
    };

    private static Dictionary<string, float[]> Weights(StudentCheckpoint c)
    {
        using var scope = torch.NewDisposeScope();
        using var m = new StudentModel(c.Metadata.Labels.Count);
        c.LoadWeights(m);
        return m.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().contiguous().data<float>().ToArray());
    }

    private static double MaxDiff(Dictionary<string, float[]> a, Dictionary<string, float[]> b) =>
        a.Keys.Max(k => a[k].Zip(b[k], (x, y) => (double)Math.Abs(x - y)).Max());

    /// <summary>TorchSharp probabilities of a checkpoint on a padded batch (eval mode: no dropout).</summary>
    private static float[][] TorchProbabilities(StudentCheckpoint c, IReadOnlyList<string> texts)
    {
        using var scope = torch.NewDisposeScope();
        using var m = new StudentModel(c.Metadata.Labels.Count);
        c.LoadWeights(m);
        m.eval();
        using var _ = torch.no_grad();
        var b = TestSupport.Tokenizer.EncodeBatch(texts, c.Metadata.MaxLength);
        var p = m.forward(torch.tensor(b.InputIds, [b.Count, b.Length]), torch.tensor(b.AttentionMask, [b.Count, b.Length])).softmax(-1).contiguous();
        var flat = p.data<float>().ToArray();
        return Enumerable.Range(0, b.Count).Select(i => flat.AsSpan(i * m.Classes, m.Classes).ToArray()).ToArray();
    }

    [Fact]
    public void Full_mode_is_repeatable_with_the_same_seed_and_differs_with_another()
    {
        var a = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 2 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("rep-a"));
        var b = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 2 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("rep-b"));
        var c = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 2, Seed = 8 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("rep-c"));
        var wa = Weights(a);
        Assert.Equal(0.0, MaxDiff(wa, Weights(b)));
        Assert.True(MaxDiff(wa, Weights(c)) > 1e-4);
        // Full mode moved the encoder away from the pretrained weights.
        using var pretrained = new MiniLMEncoder();
        pretrained.LoadPretrained(TestSupport.Pretrained.ReadModelBytes());
        using var trained = new StudentModel(4);
        trained.load(a.StatePath);
        var p0 = pretrained.named_parameters().First(p => p.name == "layers.0.query.weight").parameter.data<float>().ToArray();
        var p1 = trained.Encoder.named_parameters().First(p => p.name == "layers.0.query.weight").parameter.data<float>().ToArray();
        Assert.True(p0.Zip(p1, (x, y) => Math.Abs(x - y)).Max() > 1e-5);
        foreach (var d in new[] { a, b, c }) Directory.Delete(d.Directory, true);
    }

    [Fact]
    public void Exported_ONNX_matches_TorchSharp_after_training_on_a_padded_batch()
    {
        var ckpt = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 2 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("export"));
        // Full mode: complete, as before head-only checkpoints.
        Assert.False(ckpt.IsHeadOnly);
        Assert.Null(ckpt.Metadata.Encoder);
        Assert.Equal(StudentCheckpointMetadata.CurrentFormat, ckpt.Metadata.Format);
        Assert.Equal(ckpt.Files.Order(), Directory.GetFiles(ckpt.Directory).Select(Path.GetFileName).Order());
        Assert.True(File.Exists(ckpt.StatePath));
        Assert.True(File.Exists(ckpt.OnnxPath));
        var meta = StudentCheckpoint.ReadMetadata(ckpt.Directory);
        Assert.Equal(["World", "Sports", "Business", "Sci/Tech"], meta.Labels);
        Assert.Equal(32, meta.MaxLength);
        Assert.Equal(TestSupport.Tokenizer.VocabularyHash, meta.VocabularyHash);
        Assert.Equal("full", meta.Mode);
        Assert.Equal(2, meta.Steps);

        var texts = TestSupport.PaddedBatchTexts;
        var torchP = TorchProbabilities(ckpt, texts);
        using var onnx = OnnxStudent.Load(ckpt.Directory, new OnnxRunOptions { Threads = 2, BatchSize = 64 });
        Assert.Equal(["logits", "probs"], OnnxOutputs(ckpt.OnnxPath));
        var (logits, probs) = onnx.Predict(texts);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(1.0, probs[i].Sum(), 4);
            for (var k = 0; k < 4; k++)
                Assert.True(Math.Abs(probs[i][k] - torchP[i][k]) < 1e-4, $"text {i} class {k}: ORT {probs[i][k]} vs TorchSharp {torchP[i][k]}");
            Assert.Equal(Array.IndexOf(torchP[i], torchP[i].Max()), Array.IndexOf(probs[i], probs[i].Max()));
            Assert.Equal(Array.IndexOf(logits[i], logits[i].Max()), Array.IndexOf(probs[i], probs[i].Max()));
        }
        Directory.Delete(ckpt.Directory, true);
    }

    private static string[] OnnxOutputs(string path)
    {
        using var s = new Microsoft.ML.OnnxRuntime.InferenceSession(path);
        return s.OutputMetadata.Keys.ToArray();
    }

    [Fact]
    public void Progress_reports_epoch_loss_and_examples_per_second()
    {
        var reports = new List<StudentTrainingProgress>();
        var ckpt = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 2 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("progress"), progress: reports.Add);
        var training = reports.Where(r => r.Phase == StudentTrainingPhase.Training).ToArray();
        Assert.Equal([1L, 2L], training.Select(r => r.Step));
        Assert.All(training, r =>
        {
            Assert.Equal(1, r.Epoch);
            Assert.Equal(2, r.TotalSteps);
            Assert.True(double.IsFinite(r.Loss) && r.Loss > 0);
            Assert.True(r.ExamplesPerSecond > 0);
            Assert.True(r.LearningRate > 0);
        });
        Assert.Equal(StudentTrainingPhase.Done, reports[^1].Phase);
        Directory.Delete(ckpt.Directory, true);
    }

    [Fact]
    public void A_later_round_continues_from_the_previous_checkpoint()
    {
        var round1 = TestSupport.Trainer.Train(HeadOptions, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("round1"));
        // Learning rate 0: the round-2 weights are exactly where round 1 left them (not the pretrained/fresh ones).
        var round2 = TestSupport.Trainer.Train(HeadOptions with { LearningRate = 0, Epochs = 1, Seed = 99 }, AgNews.Tiny, AgNews.Labels,
            TestSupport.NewTempDirectory("round2"), startFrom: round1);
        Assert.Equal(0.0, MaxDiff(Weights(round1), Weights(round2)));
        Assert.Equal(round1.Directory, round2.Metadata.ContinuedFrom);
        // And a fresh run with the same seed differs from round 1's result (its head starts from random init).
        var fresh = TestSupport.Trainer.Train(HeadOptions with { LearningRate = 0, Epochs = 1, Seed = 99 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("fresh"));
        Assert.True(MaxDiff(Weights(round1), Weights(fresh)) > 1e-3);
        // Continuing with a different label order is refused.
        Assert.Throws<ArgumentException>(() => TestSupport.Trainer.Train(HeadOptions, AgNews.Tiny, new LabelSet("Sports", "World", "Business", "Sci/Tech"),
            TestSupport.NewTempDirectory("bad"), startFrom: round1));
        foreach (var d in new[] { round1, round2, fresh }) Directory.Delete(d.Directory, true);
    }

    [Fact]
    public void A_full_checkpoint_trains_on_from_its_state_and_metadata_alone()
    {
        var round1 = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 1 }, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("state-only-1"));
        // What the trainer downloads to continue: metadata.json and student.pt, not the serving graphs.
        var dir = TestSupport.NewTempDirectory("state-only");
        Assert.Equal(StudentCheckpoint.StateFileName, StudentCheckpoint.WeightsFileOf(round1.Metadata));
        foreach (var f in new[] { StudentCheckpoint.MetadataFileName, StudentCheckpoint.StateFileName })
            File.Copy(Path.Combine(round1.Directory, f), Path.Combine(dir, f));
        var previous = StudentCheckpoint.Load(dir);
        var round2 = TestSupport.Trainer.Train(TinyFull with { MaxSteps = 1, LearningRate = 0 }, AgNews.Tiny, AgNews.Labels,
            TestSupport.NewTempDirectory("state-only-2"), startFrom: previous);
        Assert.Equal(0.0, MaxDiff(Weights(round1), Weights(round2)));
        // Serving it needs model.onnx, and says so.
        var e = Assert.Throws<FileNotFoundException>(() => OnnxStudent.Load(dir));
        Assert.Contains(StudentCheckpoint.OnnxFileName, e.Message, StringComparison.Ordinal);
        foreach (var d in new[] { round1.Directory, dir, round2.Directory }) Directory.Delete(d, true);
    }

    [Fact]
    public void Head_mode_caches_embeddings_by_text_and_is_repeatable()
    {
        var cache = new SentenceEmbeddingCache();
        using var trainer = new StudentTrainer(embeddingCache: cache);
        var a = trainer.Train(HeadOptions, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("head-a"));
        Assert.Equal(AgNews.Tiny.Length, cache.Count);
        Assert.Equal(AgNews.Tiny.Length, cache.Misses);
        var b = trainer.Train(HeadOptions, AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("head-b"));
        Assert.Equal(AgNews.Tiny.Length, cache.Hits); // second run: nothing re-embedded
        Assert.Equal(0.0, MaxDiff(Weights(a), Weights(b)));
        // Only the head moved, so only the head is stored, with a reference to the pretrained encoder.
        Assert.True(a.IsHeadOnly);
        Assert.Equal(TestSupport.Pretrained.Reference, a.Metadata.Encoder);
        Assert.Equal([StudentCheckpoint.HeadFileName, StudentCheckpoint.MetadataFileName], Directory.GetFiles(a.Directory).Select(Path.GetFileName).Order());
        // The head learned the 8 training texts.
        using var onnx = OnnxStudent.Load(a.Directory, new OnnxRunOptions { Threads = 2 });
        var predicted = onnx.PredictLabels(AgNews.Tiny.Select(e => e.Text).ToArray());
        Assert.Equal(AgNews.Tiny.Select(e => AgNews.Labels.IndexOf(e.Label)), predicted);
        foreach (var d in new[] { a, b }) Directory.Delete(d.Directory, true);
    }

    [Fact]
    public void Learning_rate_warms_up_linearly_then_decays_to_zero()
    {
        double[] lr = Enumerable.Range(0, 10).Select(s => StudentTrainer.LearningRateAt(s, 10, 2, 1.0)).ToArray();
        Assert.Equal([0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125], lr);
        Assert.Equal(1.0, StudentTrainer.LearningRateAt(0, 4, 0, 1.0));
    }

    [Fact]
    public void Batches_are_length_bucketed_cover_every_example_once_and_depend_on_the_seed()
    {
        var lengths = Enumerable.Range(0, 200).Select(i => 5 + (i * 37 % 120)).ToArray();
        var batches = StudentTrainer.MakeBatches(lengths, 16, 50, new Random(1));
        Assert.Equal(Enumerable.Range(0, 200), batches.SelectMany(b => b).Order());
        // Within the one window, batches are contiguous runs of the length order: each batch's spread is small.
        var spread = batches.Where(b => b.Length == 16).Average(b => b.Max(i => lengths[i]) - b.Min(i => lengths[i]));
        Assert.True(spread < 15, $"mean length spread per batch {spread}");
        Assert.Equal(batches, StudentTrainer.MakeBatches(lengths, 16, 50, new Random(1)));
        Assert.NotEqual(batches, StudentTrainer.MakeBatches(lengths, 16, 50, new Random(2)));
    }

    [Fact]
    public void Class_weights_change_the_result_and_unknown_labels_are_refused()
    {
        var skewed = AgNews.Tiny.Concat(Enumerable.Repeat(AgNews.Tiny[0], 6)).ToArray();
        var plain = TestSupport.Trainer.Train(HeadOptions with { Epochs = 2 }, skewed, AgNews.Labels, TestSupport.NewTempDirectory("cw-plain"));
        var balanced = TestSupport.Trainer.Train(HeadOptions with { Epochs = 2, ClassWeighting = ClassWeighting.Balanced }, skewed, AgNews.Labels, TestSupport.NewTempDirectory("cw-bal"));
        var explicitW = TestSupport.Trainer.Train(HeadOptions with { Epochs = 2, ClassWeights = [0.25f, 1, 1, 1] }, skewed, AgNews.Labels, TestSupport.NewTempDirectory("cw-exp"));
        Assert.True(MaxDiff(Weights(plain), Weights(balanced)) > 1e-5);
        Assert.True(MaxDiff(Weights(plain), Weights(explicitW)) > 1e-5);
        Assert.Throws<ArgumentException>(() => TestSupport.Trainer.Train(HeadOptions, [new LabeledExample("x", "Weather")], AgNews.Labels, TestSupport.NewTempDirectory("bad")));
        foreach (var d in new[] { plain, balanced, explicitW }) Directory.Delete(d.Directory, true);
    }
}

/// <summary>Head mode after a full-mode round embeds with the fine-tuned encoder (not the pretrained one).</summary>
public sealed class MixedModeTests
{
    [Fact]
    public void Head_mode_from_a_full_checkpoint_embeds_with_the_fine_tuned_encoder()
    {
        var full = TestSupport.Trainer.Train(
            new StudentTrainingOptions { Mode = StudentTrainingMode.Full, MaxSteps = 2, BatchSize = 4, MaxLength = 32, LearningRate = 5e-4, Threads = 2, Seed = 11 },
            AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("mixed-full"));
        var cache = new SentenceEmbeddingCache();
        using var trainer = new StudentTrainer(embeddingCache: cache);
        var head = trainer.Train(
            new StudentTrainingOptions { Mode = StudentTrainingMode.Head, Epochs = 2, BatchSize = 4, MaxLength = 32, LearningRate = 1e-2, Threads = 2, Seed = 11 },
            AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("mixed-head"), startFrom: full);
        Assert.Equal(AgNews.Tiny.Length, cache.Count);
        // Its encoder is the fine-tuned one, not the package's: the checkpoint holds every weight.
        Assert.False(head.IsHeadOnly);
        Assert.True(File.Exists(head.StatePath) && File.Exists(head.OnnxPath));

        using var scope = TorchSharp.torch.NewDisposeScope();
        using var m = new StudentModel(4);
        m.load(full.StatePath);
        m.eval();
        using var _ = TorchSharp.torch.no_grad();
        var cached = cache.Vectors.ToArray();
        foreach (var e in AgNews.Tiny)
        {
            var b = TestSupport.Tokenizer.EncodeBatch([e.Text], 32);
            var v = m.Embed(TorchSharp.torch.tensor(b.InputIds, [1, b.Length]), TorchSharp.torch.tensor(b.AttentionMask, [1, b.Length])).data<float>().ToArray();
            var best = cached.Min(c => c.Zip(v, (x, y) => Math.Abs(x - y)).Max());
            Assert.True(best < 1e-4, $"no cached embedding within 1e-4 of the fine-tuned encoder's ({best})");
        }
        Directory.Delete(full.Directory, true);
        Directory.Delete(head.Directory, true);
    }
}
