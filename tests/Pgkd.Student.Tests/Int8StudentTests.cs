using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using Xunit;

namespace Pgkd.Student.Tests;

/// <summary>Issue 18 point 5: the int8 serving graph next to model.onnx (dynamic quantization of the weight matrices).</summary>
public sealed class Int8StudentTests(HeadCheckpointFixture fixture) : IClassFixture<HeadCheckpointFixture>
{
    private static readonly OnnxRunOptions Cpu = new() { Threads = 2, PreferCuda = false };

    private static string[] Texts { get; } = TestSupport.PaddedBatchTexts
        .Concat(AgNews.Tiny.Select(e => e.Text))
        .Concat(
        [
            "The central bank left interest rates unchanged and signalled no cut before spring.",
            "Rain delayed the final day of the test match; the visitors need 180 runs to win.",
            "Researchers trained a model on satellite images to map flooding in near real time.",
            "Talks on the border dispute resumed in Cairo with both foreign ministers present.",
            "Short.",
            string.Join(" ", Enumerable.Repeat("long text", 80)),
        ]).ToArray();

    [Fact]
    public void The_checkpoint_writes_model_int8_onnx_next_to_model_onnx_with_the_same_inputs_and_outputs()
    {
        var checkpoint = fixture.Complete;
        Assert.Equal(Path.Combine(checkpoint.Directory, "model.int8.onnx"), checkpoint.Int8OnnxPath);
        Assert.True(File.Exists(checkpoint.Int8OnnxPath));
        // The 36 encoder matrices shrink 4x; the word-embedding table (47 MB) stays fp32.
        Assert.InRange(new FileInfo(checkpoint.Int8OnnxPath).Length, 0.5 * new FileInfo(checkpoint.OnnxPath).Length, 0.7 * new FileInfo(checkpoint.OnnxPath).Length);
        using var so = new SessionOptions();
        using var fp32 = new InferenceSession(checkpoint.OnnxPath, so);
        using var int8 = new InferenceSession(checkpoint.Int8OnnxPath, so);
        Assert.Equal(Signature(fp32.InputMetadata), Signature(int8.InputMetadata));
        Assert.Equal(Signature(fp32.OutputMetadata), Signature(int8.OutputMetadata));
        Assert.Equal(["logits", "probs"], int8.OutputMetadata.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void No_float_MatMul_with_a_constant_matrix_is_left_and_everything_else_stays_fp32()
    {
        var fp32 = ModelProto.Parser.ParseFrom(File.ReadAllBytes(fixture.Complete.OnnxPath));
        var int8 = ModelProto.Parser.ParseFrom(File.ReadAllBytes(fixture.Complete.Int8OnnxPath));
        Assert.Equal(36, ConstantMatrixMatMuls(fp32)); // 6 layers x (Q, K, V, attention output, FFN in, FFN out)
        Assert.Equal(0, ConstantMatrixMatMuls(int8));
        Assert.Equal(36, int8.Graph.Node.Count(n => n is { OpType: "DynamicQuantizeMatMul", Domain: "com.microsoft" }));
        Assert.Equal(36, int8.Graph.Initializer.Count(t => t.DataType == (int)TensorProto.Types.DataType.Int8));
        Assert.Contains(int8.OpsetImport, o => o.Domain == "com.microsoft");
        // Attention scores (two activations), embeddings, LayerNorm, Softmax, pooling and the head are untouched.
        foreach (var op in new[] { "Gather", "ReduceMean", "Softmax", "Erf", "Gemm", "ReduceSum" })
            Assert.Equal(fp32.Graph.Node.Count(n => n.OpType == op), int8.Graph.Node.Count(n => n.OpType == op));
        Assert.Equal(12, int8.Graph.Node.Count(n => n.OpType == "MatMul"));
        var embeddings = int8.Graph.Initializer.Single(t => t.Name == "embeddings.word_embeddings.weight");
        Assert.Equal((int)TensorProto.Types.DataType.Float, embeddings.DataType);
        Assert.Contains(int8.MetadataProps, p => p is { Key: "pgkd.precision", Value: "int8" });
        Assert.Equal(fp32.MetadataProps.Where(p => p.Key.StartsWith("pgkd.labels", StringComparison.Ordinal)),
            int8.MetadataProps.Where(p => p.Key.StartsWith("pgkd.labels", StringComparison.Ordinal)));
    }

    [Fact]
    public void Int8_probabilities_stay_close_to_fp32_and_pick_the_same_labels()
    {
        using var fp32 = OnnxStudent.Load(fixture.Complete.Directory, Cpu, TestSupport.Tokenizer);
        using var int8 = OnnxStudent.Load(fixture.Complete.Directory, Cpu, TestSupport.Tokenizer, StudentPrecision.Int8);
        Assert.Equal(StudentPrecision.Fp32, fp32.Precision);
        Assert.Equal(StudentPrecision.Int8, int8.Precision);
        var a = fp32.PredictProbabilities(Texts);
        var b = int8.PredictProbabilities(Texts);
        var maxDifference = a.Zip(b, (x, y) => x.Zip(y, (p, q) => Math.Abs(p - q)).Max()).Max();
        // Measured here (AVX-512 VNNI): max |Δp| 0.048, on the empty text (the largest changes are on the shortest texts:
        // mean pooling averages the quantization noise over fewer tokens); 19 of 19 labels agree.
        Assert.True(maxDifference < 0.08, $"max |p_int8 - p_fp32| = {maxDifference}");
        // Labels agree wherever fp32 is not itself on the fence: int8 moves a probability by up to the bound above, so a text
        // whose two top classes are closer than twice it may flip. Int8 quantizes activations per run, and since texts are
        // cut into length-sorted runs of at most 1024 padded tokens (not one run of 19) one such text did.
        var (la, lb) = (fp32.PredictLabels(Texts), int8.PredictLabels(Texts));
        for (var i = 0; i < Texts.Length; i++)
        {
            var top = a[i].OrderDescending().ToArray();
            if (top[0] - top[1] > 2 * 0.08) Assert.True(la[i] == lb[i], $"text {i}: fp32 label {la[i]} (margin {top[0] - top[1]:F3}), int8 {lb[i]}");
        }
        Assert.True(la.Zip(lb).Count(p => p.First != p.Second) <= 1, $"labels differ on {la.Zip(lb).Count(p => p.First != p.Second)} of {Texts.Length} texts");
    }

    [Fact]
    public void The_quantizer_is_a_deterministic_function_of_the_fp32_bytes()
    {
        var fp32 = File.ReadAllBytes(fixture.Complete.OnnxPath);
        var once = StudentQuantizer.QuantizeDynamicInt8(fp32);
        Assert.Equal(once, StudentQuantizer.QuantizeDynamicInt8(fp32));
        Assert.Equal(File.ReadAllBytes(fixture.Complete.Int8OnnxPath), once);
    }

    [Fact]
    public void Loading_int8_from_a_checkpoint_without_it_names_the_missing_file()
    {
        var dir = TestSupport.NewTempDirectory("no-int8");
        try
        {
            foreach (var f in new[] { StudentCheckpoint.OnnxFileName, StudentCheckpoint.MetadataFileName })
                File.Copy(Path.Combine(fixture.Complete.Directory, f), Path.Combine(dir, f));
            using (OnnxStudent.Load(dir, Cpu, TestSupport.Tokenizer)) { } // fp32 alone still serves
            var e = Assert.Throws<FileNotFoundException>(() => OnnxStudent.Load(dir, Cpu, TestSupport.Tokenizer, StudentPrecision.Int8));
            Assert.Contains(Path.Combine(dir, StudentCheckpoint.Int8OnnxFileName), e.Message, StringComparison.Ordinal);
            Assert.Equal(Path.Combine(dir, StudentCheckpoint.Int8OnnxFileName), e.FileName);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Weights_are_int8_symmetric_with_one_scale_per_output_column()
    {
        // [in = 3, out = 2], values exact in binary: column 0 spans ±127/64, column 1 ±127/256.
        float[] w = [127 / 64f, 127 / 256f, -63.5f / 64, -63.5f / 256, 0.5f / 64, 1.5f / 256];
        var tensor = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.AddRange([3, 2]);
        MiniLMOnnx.SetFloats(tensor, w);
        var (values, scales) = StudentQuantizer.QuantizeWeights(tensor);
        Assert.Equal([3L, 2L], values.Dims);
        Assert.Equal((int)TensorProto.Types.DataType.Int8, values.DataType);
        Assert.Equal([2L], scales.Dims);
        var s = MiniLMOnnx.Floats(scales);
        Assert.Equal([1 / 64f, 1 / 256f], s);
        var q = MemoryMarshal.Cast<byte, sbyte>(values.RawData.Span).ToArray();
        // Ties round to even: -63.5 -> -64, 0.5 -> 0, 1.5 -> 2 (as ONNX QuantizeLinear).
        Assert.Equal(new sbyte[] { 127, 127, -64, -64, 0, 2 }, q);
        for (var i = 0; i < w.Length; i++)
            Assert.True(Math.Abs(q[i] * s[i % 2] - w[i]) <= s[i % 2] / 2 + 1e-7f, $"element {i}");
    }

    [Fact]
    public void Only_MatMuls_with_a_constant_rank_2_float_matrix_are_rewritten_and_the_graph_computes_the_same()
    {
        // x[n,4] · W[4,3] + b, then · y (an activation), then · V where V is an initializer that is also a graph
        // input (callers may override it: not a constant), plus · a rank-1 constant [3].
        var graph = new GraphProto { Name = "t" };
        graph.Input.Add(Value("x", ["n", 4]));
        graph.Input.Add(Value("y", [3, 2]));
        graph.Input.Add(Value("v", [2, 2]));
        graph.Output.Add(Value("out", ["n", 2]));
        graph.Output.Add(Value("dot", ["n"]));
        var rng = new Random(3);
        graph.Initializer.Add(Floats("w", [4, 3], rng));
        graph.Initializer.Add(Floats("b", [3], rng));
        graph.Initializer.Add(Floats("v", [2, 2], rng));
        graph.Initializer.Add(Floats("r", [3], rng));
        graph.Node.Add(Node("MatMul", ["x", "w"], ["xw"]));
        graph.Node.Add(Node("Add", ["b", "xw"], ["h"]));
        graph.Node.Add(Node("MatMul", ["h", "y"], ["hy"]));
        graph.Node.Add(Node("MatMul", ["hy", "v"], ["out"]));
        graph.Node.Add(Node("MatMul", ["h", "r"], ["dot"]));
        var model = new ModelProto { IrVersion = 7, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });

        var int8 = ModelProto.Parser.ParseFrom(StudentQuantizer.QuantizeDynamicInt8(model.ToByteArray()));
        var ops = int8.Graph.Node.Select(n => n.OpType).ToArray();
        Assert.Equal(["DynamicQuantizeMatMul", "MatMul", "MatMul", "MatMul"], ops); // the bias Add is folded in
        Assert.Equal(["x", "w_int8", "w_scale", "", "b"], int8.Graph.Node[0].Input);
        Assert.Equal("h", int8.Graph.Node[0].Output.Single());
        Assert.DoesNotContain(int8.Graph.Initializer, t => t.Name == "w");

        float[] x = [0.5f, -1f, 2f, 0.25f, -0.75f, 0.1f, 0.3f, 1.5f];
        float[] y = [1f, 0.5f, -0.5f, 2f, 0.25f, -1f];
        var (expected, actual) = (Run(model.ToByteArray(), x, y), Run(int8.ToByteArray(), x, y));
        for (var o = 0; o < 2; o++)
            for (var i = 0; i < expected[o].Length; i++)
                Assert.True(Math.Abs(expected[o][i] - actual[o][i]) < 0.05 * (1 + Math.Abs(expected[o][i])), $"output {o}[{i}]: {actual[o][i]} vs {expected[o][i]}");
    }

    private static string[] Signature(IReadOnlyDictionary<string, NodeMetadata> metadata) =>
        metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => $"{kv.Key}:{kv.Value.ElementDataType}[{string.Join(",", kv.Value.SymbolicDimensions.Zip(kv.Value.Dimensions, (s, d) => s.Length > 0 ? s : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]")
            .ToArray();

    private static int ConstantMatrixMatMuls(ModelProto model)
    {
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        return model.Graph.Node.Count(n => n.OpType == "MatMul" && initializers.TryGetValue(n.Input[1], out var t) &&
                                           t.DataType == (int)TensorProto.Types.DataType.Float && t.Dims.Count == 2);
    }

    private static float[][] Run(byte[] model, float[] x, float[] y)
    {
        using var session = new InferenceSession(model);
        using var xs = OrtValue.CreateTensorValueFromMemory(x, [2, 4]);
        using var ys = OrtValue.CreateTensorValueFromMemory(y, [3, 2]);
        using var results = session.Run(new RunOptions(), ["x", "y"], [xs, ys], ["out", "dot"]);
        return results.Select(r => r.GetTensorDataAsSpan<float>().ToArray()).ToArray();
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs)
    {
        var n = new NodeProto { OpType = op, Name = outputs[0] };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        return n;
    }

    private static TensorProto Floats(string name, long[] dims, Random rng)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        MiniLMOnnx.SetFloats(t, Enumerable.Range(0, (int)dims.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray());
        return t;
    }

    private static ValueInfoProto Value(string name, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = (int)d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }
}
