using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace Pgkd.Student;

/// <summary>
/// Reads and rewrites the MiniLM ONNX graph (OnnxSharp protobuf classes).
/// Named initializers (embeddings, biases, LayerNorm) carry their Hugging Face names; MatMul weights are
/// anonymous and stored [in, out]: each is named after the <c>*.bias</c> of the Add that consumes the
/// MatMul's output, and is transposed to the [out, in] layout of a Linear layer.
/// </summary>
internal static class MiniLMOnnx
{
    public sealed record WeightRef(TensorProto Initializer, bool Transposed);

    public static ModelProto Parse(byte[] bytes) => ModelProto.Parser.ParseFrom(bytes);

    /// <summary>Hugging Face parameter name (e.g. encoder.layer.0.attention.self.query.weight) to its initializer.</summary>
    public static Dictionary<string, WeightRef> NamedWeights(ModelProto model)
    {
        var inits = model.Graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var result = new Dictionary<string, WeightRef>(StringComparer.Ordinal);
        foreach (var init in model.Graph.Initializer)
            if (init.DataType == (int)TensorProto.Types.DataType.Float && (init.Name.EndsWith(".weight", StringComparison.Ordinal) || init.Name.EndsWith(".bias", StringComparison.Ordinal)))
                result[init.Name] = new WeightRef(init, false);
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in model.Graph.Node)
            foreach (var input in node.Input)
                (consumers.TryGetValue(input, out var l) ? l : consumers[input] = []).Add(node);
        foreach (var node in model.Graph.Node.Where(n => n.OpType == "MatMul" && n.Input.Count == 2 && inits.ContainsKey(n.Input[1])))
        {
            var add = consumers.GetValueOrDefault(node.Output[0])?.FirstOrDefault(n => n.OpType == "Add");
            var bias = add?.Input.FirstOrDefault(i => i != node.Output[0] && i.EndsWith(".bias", StringComparison.Ordinal));
            if (bias is null) continue;
            result[bias[..^".bias".Length] + ".weight"] = new WeightRef(inits[node.Input[1]], true);
        }
        return result;
    }

    /// <summary>Float contents of an initializer (raw_data or float_data).</summary>
    public static float[] Floats(TensorProto t) =>
        t.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray() : t.FloatData.ToArray();

    public static long[] Shape(TensorProto t) => t.Dims.ToArray();

    public static void SetFloats(TensorProto t, ReadOnlySpan<float> values)
    {
        t.FloatData.Clear();
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values));
    }

    /// <summary>
    /// Builds the serving graph from the MiniLM graph: initializers replaced by <paramref name="weights"/>
    /// (HF names, Linear layout [out,in]; transposed back here), pooler dropped, then attention-masked mean
    /// pooling (sum of token vectors / max(token count, 1e-9), as sentence-transformers) and, when a head is
    /// given, <c>logits = pooled · Wᵀ + b</c> and <c>probs = softmax(logits)</c>. Without a head the single output is
    /// <c>sentence_embedding</c>.
    /// </summary>
    public static ModelProto BuildServingGraph(
        byte[] baseModel,
        IReadOnlyDictionary<string, float[]>? weights,
        (float[] Weight, float[] Bias, int Classes)? head,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var model = Parse(baseModel);
        var graph = model.Graph;
        if (weights is not null)
        {
            foreach (var (name, w) in NamedWeights(model))
            {
                if (name.StartsWith("pooler.", StringComparison.Ordinal)) continue;
                if (!weights.TryGetValue(name, out var values))
                    throw new InvalidOperationException($"No weights given for {name}.");
                var shape = Shape(w.Initializer);
                if (values.Length != shape.Aggregate(1L, (a, b) => a * b))
                    throw new InvalidOperationException($"{name}: {values.Length} values for shape [{string.Join(",", shape)}].");
                if (w.Transposed)
                {
                    // ONNX holds [in, out]; Linear weights are [out, in].
                    int rows = (int)shape[0], cols = (int)shape[1];
                    var t = new float[values.Length];
                    for (var o = 0; o < cols; o++)
                        for (var i = 0; i < rows; i++)
                            t[i * cols + o] = values[o * rows + i];
                    values = t;
                }
                SetFloats(w.Initializer, values);
            }
        }

        const string hidden = "last_hidden_state";
        graph.Output.Clear();
        graph.Initializer.Add(Int64Tensor("pgkd_axes_last", [-1]));
        graph.Initializer.Add(Int64Tensor("pgkd_axes_seq", [1]));
        graph.Initializer.Add(FloatTensor("pgkd_eps", [1e-9f], []));
        graph.Node.Add(Node("Cast", ["attention_mask"], ["pgkd_mask_f"], new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float }));
        graph.Node.Add(Node("Unsqueeze", ["pgkd_mask_f", "pgkd_axes_last"], ["pgkd_mask_3d"]));
        graph.Node.Add(Node("Mul", [hidden, "pgkd_mask_3d"], ["pgkd_masked"]));
        graph.Node.Add(Node("ReduceSum", ["pgkd_masked", "pgkd_axes_seq"], ["pgkd_sum"], IntAttr("keepdims", 0)));
        graph.Node.Add(Node("ReduceSum", ["pgkd_mask_3d", "pgkd_axes_seq"], ["pgkd_count"], IntAttr("keepdims", 0)));
        graph.Node.Add(Node("Max", ["pgkd_count", "pgkd_eps"], ["pgkd_count_c"]));
        graph.Node.Add(Node("Div", ["pgkd_sum", "pgkd_count_c"], [SentenceEmbedding]));
        if (head is { } h)
            AddHead(graph, h.Weight, h.Bias, h.Classes);
        else
            graph.Output.Add(Output(SentenceEmbedding, MiniLMShape.Hidden));
        Prune(graph);
        return Finish(model, metadata);
    }

    /// <summary>The name of the pooled sentence vector [batch, 384]: the embedder's output and the head's input.</summary>
    public const string SentenceEmbedding = "sentence_embedding";

    /// <summary>all-MiniLM-L6-v2's export: IR version 7, default-domain opset 13; the head graph uses the same.</summary>
    private const long IrVersion = 7, Opset = 13;

    /// <summary>
    /// The head alone, as a head-only checkpoint stores it (head.onnx): <c>sentence_embedding</c> [batch, 384] in,
    /// <c>logits = sentence_embedding · Wᵀ + b</c> and <c>probs = softmax(logits)</c> out; the same nodes and names the serving
    /// graph ends with, so the two compose into it and score the same.
    /// </summary>
    public static ModelProto BuildHeadGraph(float[] weight, float[] bias, int classes, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var model = new ModelProto { IrVersion = IrVersion, Graph = new GraphProto { Name = "pgkd_head" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        model.Graph.Input.Add(Output(SentenceEmbedding, MiniLMShape.Hidden));
        AddHead(model.Graph, weight, bias, classes);
        return Finish(model, metadata);
    }

    /// <summary>The head's weight [classes, 384] and bias [classes] from a head graph (or a serving graph), checked against <paramref name="classes"/>.</summary>
    public static (float[] Weight, float[] Bias) HeadWeights(ModelProto model, int classes, string where)
    {
        float[] Read(string name, long[] shape)
        {
            var t = model.Graph.Initializer.FirstOrDefault(i => i.Name == name)
                    ?? throw new InvalidDataException($"{where}: no initializer {name}: not a student head.");
            if (t.DataType != (int)TensorProto.Types.DataType.Float || !t.Dims.SequenceEqual(shape))
                throw new InvalidDataException($"{where}: {name} has shape [{string.Join(",", t.Dims)}], expected float [{string.Join(",", shape)}] ({classes} labels).");
            return Floats(t);
        }
        return (Read("head.weight", [classes, MiniLMShape.Hidden]), Read("head.bias", [classes]));
    }

    private static void AddHead(GraphProto graph, float[] weight, float[] bias, int classes)
    {
        graph.Initializer.Add(FloatTensor("head.weight", weight, [classes, weight.Length / classes]));
        graph.Initializer.Add(FloatTensor("head.bias", bias, [classes]));
        graph.Node.Add(Node("Gemm", [SentenceEmbedding, "head.weight", "head.bias"], ["logits"], IntAttr("transB", 1)));
        graph.Node.Add(Node("Softmax", ["logits"], ["probs"], IntAttr("axis", 1)));
        graph.Output.Add(Output("logits", classes));
        graph.Output.Add(Output("probs", classes));
    }

    private static ModelProto Finish(ModelProto model, IReadOnlyDictionary<string, string>? metadata)
    {
        if (metadata is not null)
        {
            model.MetadataProps.Clear();
            foreach (var (k, v) in metadata)
                model.MetadataProps.Add(new StringStringEntryProto { Key = k, Value = v });
        }
        model.ProducerName = "Pgkd.Student";
        model.ProducerVersion = "1";
        return model;
    }

    /// <summary>Drops nodes and initializers that no graph output depends on (the pooler, after its output went).</summary>
    private static void Prune(GraphProto graph)
    {
        var needed = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var keep = new bool[graph.Node.Count];
        for (var i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (!node.Output.Any(needed.Contains)) continue;
            keep[i] = true;
            foreach (var input in node.Input) needed.Add(input);
        }
        var nodes = graph.Node.Where((_, i) => keep[i]).ToList();
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        var inits = graph.Initializer.Where(t => needed.Contains(t.Name)).ToList();
        graph.Initializer.Clear();
        graph.Initializer.AddRange(inits);
        var values = graph.ValueInfo.Where(v => needed.Contains(v.Name)).ToList();
        graph.ValueInfo.Clear();
        graph.ValueInfo.AddRange(values);
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = "pgkd_" + outputs[0] };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        return n;
    }

    private static AttributeProto IntAttr(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static TensorProto Int64Tensor(string name, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.Add(values.Length);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private static TensorProto FloatTensor(string name, float[] values, long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private static ValueInfoProto Output(string name, long width) => new()
    {
        Name = name,
        Type = new TypeProto
        {
            TensorType = new TypeProto.Types.Tensor
            {
                ElemType = (int)TensorProto.Types.DataType.Float,
                Shape = new TensorShapeProto
                {
                    Dim =
                    {
                        new TensorShapeProto.Types.Dimension { DimParam = "batch" },
                        new TensorShapeProto.Types.Dimension { DimValue = width },
                    },
                },
            },
        },
    };
}
