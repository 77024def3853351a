using System.Diagnostics;
using TorchSharp;

namespace Pgkd.Benchmarks.Speed;

/// <summary>This machine's fp32 GEMM rate: libtorch <c>mm</c> and a one-node ONNX Runtime MatMul, FLOP/s (multiply-add = 2).</summary>
internal static class Gemm
{
    public static double TorchRate(int m, int k, int n)
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(m, k);
        var b = torch.randn(k, n);
        for (var i = 0; i < 3; i++) torch.mm(a, b).Dispose();
        var reps = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < 1.5 || reps < 3)
        {
            torch.mm(a, b).Dispose();
            reps++;
        }
        return 2.0 * m * k * n * reps / sw.Elapsed.TotalSeconds;
    }

    /// <summary>Y = A · B (B a constant initializer), ONNX Runtime on CPU with the given threads.</summary>
    public static double OrtRate(int m, int k, int n, int threads)
    {
        var model = new Onnx.ModelProto { IrVersion = 7, Graph = new Onnx.GraphProto { Name = "gemm" } };
        model.OpsetImport.Add(new Onnx.OperatorSetIdProto { Domain = "", Version = 13 });
        var rng = new Random(1);
        var bValues = Enumerable.Range(0, k * n).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        var b = new Onnx.TensorProto { Name = "B", DataType = (int)Onnx.TensorProto.Types.DataType.Float };
        b.Dims.Add(k); b.Dims.Add(n);
        b.RawData = Google.Protobuf.ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(bValues.AsSpan()));
        model.Graph.Initializer.Add(b);
        Onnx.ValueInfoProto Value(string name, long r, long c) => new()
        {
            Name = name,
            Type = new Onnx.TypeProto { TensorType = new Onnx.TypeProto.Types.Tensor { ElemType = 1, Shape = new Onnx.TensorShapeProto
            { Dim = { new Onnx.TensorShapeProto.Types.Dimension { DimValue = r }, new Onnx.TensorShapeProto.Types.Dimension { DimValue = c } } } } },
        };
        model.Graph.Input.Add(Value("A", m, k));
        model.Graph.Output.Add(Value("Y", m, n));
        var node = new Onnx.NodeProto { OpType = "MatMul", Name = "mm" };
        node.Input.Add("A"); node.Input.Add("B"); node.Output.Add("Y");
        model.Graph.Node.Add(node);
        using var so = new Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1 };
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(Google.Protobuf.MessageExtensions.ToByteArray(model), so);
        var aValues = Enumerable.Range(0, m * k).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray();
        using var a = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(aValues, [m, k]);
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        for (var i = 0; i < 3; i++) session.Run(runOptions, ["A"], [a], ["Y"]).Dispose();
        var reps = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < 1.5 || reps < 3)
        {
            session.Run(runOptions, ["A"], [a], ["Y"]).Dispose();
            reps++;
        }
        return 2.0 * m * k * n * reps / sw.Elapsed.TotalSeconds;
    }
}
