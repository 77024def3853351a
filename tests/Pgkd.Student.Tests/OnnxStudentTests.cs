using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>A head-mode student: as the trainer writes it (head-only), and the same weights as a complete checkpoint.</summary>
public sealed class HeadCheckpointFixture : IDisposable
{
    public HeadCheckpointFixture()
    {
        Checkpoint = TestSupport.Trainer.Train(
            new StudentTrainingOptions { Mode = StudentTrainingMode.Head, Epochs = 10, BatchSize = 4, LearningRate = 1e-2, MaxLength = 64, Threads = 2, Seed = 5 },
            AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("onnx-student"));
        Complete = TestSupport.CompleteCopy(Checkpoint, TestSupport.NewTempDirectory("onnx-student-complete"));
    }

    /// <summary>Head-only: head.onnx and metadata.json.</summary>
    public StudentCheckpoint Checkpoint { get; }

    /// <summary>The same weights in a complete checkpoint (student.pt, model.onnx, model.int8.onnx), as head mode wrote before.</summary>
    public StudentCheckpoint Complete { get; }

    public void Dispose()
    {
        Directory.Delete(Checkpoint.Directory, true);
        Directory.Delete(Complete.Directory, true);
    }
}

/// <summary>Point 7: serving with ONNX Runtime (GPU package, CPU fallback), batched by length, one reused session.</summary>
public sealed class OnnxStudentTests(HeadCheckpointFixture fixture) : IClassFixture<HeadCheckpointFixture>
{
    [Fact]
    public void Loads_on_a_cpu_only_machine_and_says_which_provider_serves()
    {
        var log = new List<string>();
        using var student = OnnxStudent.Load(fixture.Checkpoint.Directory, new OnnxRunOptions { Threads = 2, PreferCuda = true, Log = log.Add });
        var hasCuda = File.Exists("/dev/nvidia0");
        if (!hasCuda)
        {
            Assert.Equal("CPU", student.ExecutionProvider);
            Assert.Contains(log, l => l.Contains("CUDA execution provider unavailable", StringComparison.Ordinal));
        }
        Assert.Contains(log, l => l.Contains($"{student.ExecutionProvider} execution provider", StringComparison.Ordinal));
        Assert.Equal(AgNews.Labels.Names, student.Labels);
        Assert.Equal(64, student.MaxLength);
    }

    [Fact]
    public void Batched_and_bucketed_predictions_equal_one_by_one_predictions_in_input_order()
    {
        var texts = TestSupport.PaddedBatchTexts.Concat(AgNews.Tiny.Select(e => e.Text)).Concat(["Short.", string.Join(" ", Enumerable.Repeat("long text", 80))]).ToArray();
        using var batched = OnnxStudent.Load(fixture.Checkpoint.Directory, new OnnxRunOptions { Threads = 2, PreferCuda = false, BatchSize = 4 });
        using var single = OnnxStudent.Load(fixture.Checkpoint.Directory, new OnnxRunOptions { Threads = 1, PreferCuda = false, BatchSize = 1 });
        var a = batched.PredictProbabilities(texts);
        var again = batched.PredictProbabilities(texts); // the same session, reused
        Assert.Equal(texts.Length, a.Length);
        for (var i = 0; i < texts.Length; i++)
        {
            var b = single.PredictProbabilities([texts[i]])[0];
            Assert.Equal(4, a[i].Length);
            for (var k = 0; k < 4; k++)
                Assert.True(Math.Abs(a[i][k] - b[k]) < 1e-5, $"text {i} class {k}: {a[i][k]} vs {b[k]}");
            Assert.Equal(a[i], again[i]);
        }
        Assert.Empty(batched.PredictProbabilities([]));
    }

    [Fact]
    public void A_request_cut_into_length_sorted_runs_gets_the_answers_of_one_padded_run_and_of_each_text_alone()
    {
        // 64 texts in data order, one of them at the 64-token cap: one padded run would pad every text to it.
        var texts = Enumerable.Range(0, 64).Select(i => i % 16 == 5
                ? string.Join(" ", Enumerable.Repeat("markets and football", 40))
                : string.Join(" ", AgNews.Tiny[i % AgNews.Tiny.Length].Text.Split(' ').Take(2 + i % 11)))
            .ToArray();
        using var cut = OnnxStudent.Load(fixture.Checkpoint.Directory, new OnnxRunOptions { Threads = 2, PreferCuda = false, MaxPaddingShare = 0.25 });
        using var padded = OnnxStudent.Load(fixture.Checkpoint.Directory, new OnnxRunOptions { Threads = 2, PreferCuda = false, MaxPaddingShare = 1, MaxBatchTokens = int.MaxValue });
        var lengths = texts.Select(t => cut.Tokenizer.Encode(t, cut.MaxLength).Length).ToArray();
        Assert.True(LengthBatches.Plan(lengths, 64, 8192, 0.25).Length > 2, "the texts should need several runs");
        Assert.Single(LengthBatches.Plan(lengths, 64, int.MaxValue, 1));

        var a = cut.PredictProbabilities(texts);
        var b = padded.PredictProbabilities(texts);
        for (var i = 0; i < texts.Length; i++)
        {
            var alone = padded.PredictEncoded([cut.Tokenizer.Encode(texts[i], cut.MaxLength)])[0];
            for (var k = 0; k < 4; k++)
            {
                Assert.True(Math.Abs(a[i][k] - alone[k]) <= 1e-5, $"text {i} class {k}: {a[i][k]} cut, {alone[k]} alone");
                Assert.True(Math.Abs(a[i][k] - b[i][k]) <= 1e-5, $"text {i} class {k}: {a[i][k]} cut, {b[i][k]} one padded run");
            }
        }
    }

    [Fact]
    public void The_trainers_cached_embedding_path_predicts_what_the_onnx_model_predicts()
    {
        var texts = AgNews.Tiny.Select(e => e.Text).Append("A sentence the training never saw about markets and football.").ToArray();
        using var onnx = OnnxStudent.Load(fixture.Checkpoint.Directory, new OnnxRunOptions { Threads = 2, PreferCuda = false });
        var expected = onnx.PredictProbabilities(texts);
        var misses = TestSupport.Trainer.EmbeddingCache.Misses;
        var actual = TestSupport.Trainer.PredictProbabilities(fixture.Checkpoint, texts, threads: 2);
        Assert.Equal(texts.Length, actual.Length);
        for (var i = 0; i < texts.Length; i++)
            for (var k = 0; k < 4; k++)
                Assert.True(Math.Abs(actual[i][k] - expected[i][k]) < 1e-4, $"text {i} class {k}: {actual[i][k]} vs {expected[i][k]}");
        // Head mode: the training texts were embedded during training and come from the cache; only the new one is computed.
        Assert.Equal(1, TestSupport.Trainer.EmbeddingCache.Misses - misses);
    }

    [Fact]
    public void Refuses_a_folder_without_metadata()
    {
        var dir = TestSupport.NewTempDirectory("empty");
        Assert.Throws<FileNotFoundException>(() => OnnxStudent.Load(dir));
        Directory.Delete(dir);
    }
}
