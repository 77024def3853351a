using Pgkd.Student;
using TorchSharp;

namespace Pgkd.Benchmarks.Speed;

/// <summary>The student served by TorchSharp eager (no ONNX): the checkpoint's weights, eval mode, no_grad, CPU.</summary>
internal sealed class EagerStudent : IDisposable
{
    private readonly StudentModel _model;
    private readonly StudentTokenizer _tokenizer;
    private readonly int _maxLength;

    public EagerStudent(string checkpointDirectory, int classes, StudentTokenizer tokenizer, int maxLength, int threads)
    {
        TorchDevice.SetThreads(threads);
        _model = new StudentModel(classes);
        StudentCheckpoint.Load(checkpointDirectory).LoadWeights(_model); // student.pt, or the pretrained encoder + head.onnx
        _model.eval();
        _tokenizer = tokenizer;
        _maxLength = maxLength;
    }

    /// <summary>Probabilities per text; the texts of a call sorted by length and padded to the longest, as ONNX Runtime serving does.</summary>
    public float[][] Predict(IReadOnlyList<string> texts)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var rows = texts.Select(t => _tokenizer.Encode(t, _maxLength)).OrderBy(r => r.Length).ToArray();
        var batch = StudentTokenizer.Pad(rows);
        var ids = torch.tensor(batch.InputIds, [batch.Count, batch.Length]);
        var mask = torch.tensor(batch.AttentionMask, [batch.Count, batch.Length]);
        var probs = _model.forward(ids, mask).softmax(-1);
        var flat = probs.data<float>().ToArray();
        var width = flat.Length / batch.Count;
        return Enumerable.Range(0, batch.Count).Select(i => flat.AsSpan(i * width, width).ToArray()).ToArray();
    }

    public void Dispose() => _model.Dispose();
}
