using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Pgkd.Student;

/// <summary>Shape of all-MiniLM-L6-v2 (a 6-layer BERT).</summary>
public static class MiniLMShape
{
    public const int VocabularySize = 30522;
    public const int Hidden = 384;
    public const int Layers = 6;
    public const int Heads = 12;
    public const int Intermediate = 1536;
    public const int MaxPositions = 512;
    public const int TokenTypes = 2;
    public const double LayerNormEps = 1e-12;
    /// <summary>Added to attention scores of padding positions, as the exported graph does.</summary>
    public const float MaskBias = -10000f;
}

/// <summary>One BERT layer: self-attention + feed-forward, post-LayerNorm, exact (erf) GELU.</summary>
internal sealed class BertLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear query, key, value, attention_output, intermediate, output;
    private readonly LayerNorm attention_norm, output_norm;

    public BertLayer(string name) : base(name)
    {
        const int h = MiniLMShape.Hidden;
        query = nn.Linear(h, h);
        key = nn.Linear(h, h);
        value = nn.Linear(h, h);
        attention_output = nn.Linear(h, h);
        attention_norm = nn.LayerNorm([h], MiniLMShape.LayerNormEps);
        intermediate = nn.Linear(h, MiniLMShape.Intermediate);
        output = nn.Linear(MiniLMShape.Intermediate, h);
        output_norm = nn.LayerNorm([h], MiniLMShape.LayerNormEps);
        RegisterComponents();
    }

    /// <param name="x">[B, T, H]</param>
    /// <param name="maskBias">[B, 1, 1, T]: 0 for tokens, -10000 for padding</param>
    public override Tensor forward(Tensor x, Tensor maskBias)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        const int heads = MiniLMShape.Heads, d = MiniLMShape.Hidden / MiniLMShape.Heads;
        var q = query.forward(x).view(b, t, heads, d).transpose(1, 2);
        var k = key.forward(x).view(b, t, heads, d).transpose(1, 2);
        var v = value.forward(x).view(b, t, heads, d).transpose(1, 2);
        var scores = q.matmul(k.transpose(-1, -2)).div(Math.Sqrt(d)).add(maskBias);
        var context = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(b, t, MiniLMShape.Hidden);
        var a = attention_norm.forward(attention_output.forward(context).add(x));
        var f = output.forward(nn.functional.gelu(intermediate.forward(a)));
        return output_norm.forward(f.add(a)).MoveToOuterDisposeScope();
    }
}

/// <summary>The MiniLM encoder: embeddings + 6 BERT layers; returns the last hidden state [B, T, 384].</summary>
public sealed class MiniLMEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding word_embeddings, position_embeddings, token_type_embeddings;
    private readonly LayerNorm embeddings_norm;
    private readonly ModuleList<BertLayer> layers;

    public MiniLMEncoder() : base("MiniLMEncoder")
    {
        word_embeddings = nn.Embedding(MiniLMShape.VocabularySize, MiniLMShape.Hidden);
        position_embeddings = nn.Embedding(MiniLMShape.MaxPositions, MiniLMShape.Hidden);
        token_type_embeddings = nn.Embedding(MiniLMShape.TokenTypes, MiniLMShape.Hidden);
        embeddings_norm = nn.LayerNorm([MiniLMShape.Hidden], MiniLMShape.LayerNormEps);
        layers = new ModuleList<BertLayer>(Enumerable.Range(0, MiniLMShape.Layers).Select(i => new BertLayer($"layer{i}")).ToArray());
        RegisterComponents();
    }

    /// <param name="inputIds">[B, T] int64</param>
    /// <param name="attentionMask">[B, T] int64, 1 for tokens and 0 for padding</param>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var t = inputIds.shape[1];
        var positions = arange(t, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        var x = word_embeddings.forward(inputIds)
            .add(position_embeddings.forward(positions))
            .add(token_type_embeddings.forward(zeros_like(inputIds)));
        x = embeddings_norm.forward(x);
        var maskBias = ones_like(attentionMask, ScalarType.Float32).sub(attentionMask.to_type(ScalarType.Float32))
            .mul(MiniLMShape.MaskBias).unsqueeze(1).unsqueeze(1);
        foreach (var layer in layers)
            x = layer.forward(x, maskBias);
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>TorchSharp parameter name (e.g. layers.0.query.weight) for a Hugging Face BERT name, or null.</summary>
    internal static string? FromHuggingFace(string hf)
    {
        if (hf.StartsWith("embeddings.", StringComparison.Ordinal))
            return hf["embeddings.".Length..].Replace("LayerNorm.", "embeddings_norm.", StringComparison.Ordinal) switch
            {
                var s when s.StartsWith("embeddings_norm.", StringComparison.Ordinal) => s,
                var s when s.EndsWith("_embeddings.weight", StringComparison.Ordinal) => s,
                _ => null,
            };
        if (!hf.StartsWith("encoder.layer.", StringComparison.Ordinal)) return null;
        var rest = hf["encoder.layer.".Length..];
        var dot = rest.IndexOf('.');
        var index = rest[..dot];
        var tail = rest[(dot + 1)..];
        var last = tail.LastIndexOf('.');
        var module = tail[..last] switch
        {
            "attention.self.query" => "query",
            "attention.self.key" => "key",
            "attention.self.value" => "value",
            "attention.output.dense" => "attention_output",
            "attention.output.LayerNorm" => "attention_norm",
            "intermediate.dense" => "intermediate",
            "output.dense" => "output",
            "output.LayerNorm" => "output_norm",
            _ => null,
        };
        return module is null ? null : $"layers.{index}.{module}{tail[last..]}";
    }

    /// <summary>Loads the pretrained weights from the MiniLM ONNX initializers (every parameter must be found).</summary>
    public void LoadPretrained(byte[] onnxModel)
    {
        var model = MiniLMOnnx.Parse(onnxModel);
        var byName = new Dictionary<string, (float[] Values, long[] Shape)>(StringComparer.Ordinal);
        foreach (var (hf, w) in MiniLMOnnx.NamedWeights(model))
        {
            var mine = FromHuggingFace(hf);
            if (mine is null) continue;
            var values = MiniLMOnnx.Floats(w.Initializer);
            var shape = MiniLMOnnx.Shape(w.Initializer);
            byName[mine] = w.Transposed
                ? (Transpose(values, (int)shape[0], (int)shape[1]), [shape[1], shape[0]])
                : (values, shape);
        }
        using var _ = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (!byName.TryGetValue(name, out var w))
                throw new InvalidOperationException($"The MiniLM ONNX model has no weights for {name}.");
            if (!p.shape.SequenceEqual(w.Shape))
                throw new InvalidOperationException($"{name}: shape [{string.Join(",", p.shape)}] vs ONNX [{string.Join(",", w.Shape)}].");
            using var src = tensor(w.Values, w.Shape);
            p.copy_(src);
        }
    }

    /// <summary>Weights by Hugging Face name in Linear layout ([out, in]), for ONNX export.</summary>
    internal Dictionary<string, float[]> WeightsByHuggingFaceName()
    {
        var mine = named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var hf in HuggingFaceNames())
        {
            var name = FromHuggingFace(hf)!;
            using var c = mine[name].detach().cpu().contiguous();
            result[hf] = c.data<float>().ToArray();
        }
        return result;
    }

    internal static IEnumerable<string> HuggingFaceNames()
    {
        yield return "embeddings.word_embeddings.weight";
        yield return "embeddings.position_embeddings.weight";
        yield return "embeddings.token_type_embeddings.weight";
        yield return "embeddings.LayerNorm.weight";
        yield return "embeddings.LayerNorm.bias";
        string[] modules = ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
            "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"];
        for (var i = 0; i < MiniLMShape.Layers; i++)
            foreach (var m in modules)
                foreach (var p in new[] { "weight", "bias" })
                    yield return $"encoder.layer.{i}.{m}.{p}";
    }

    internal static float[] Transpose(float[] values, int rows, int cols)
    {
        var t = new float[values.Length];
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < cols; c++)
                t[c * rows + r] = values[r * cols + c];
        return t;
    }
}

/// <summary>The student: MiniLM encoder, attention-masked mean pooling, optional dropout, linear head.</summary>
public sealed class StudentModel : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly MiniLMEncoder encoder;
    private readonly Dropout dropout;
    private readonly Linear head;

    public StudentModel(int classes, double dropout = 0.1) : base("StudentModel")
    {
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes));
        Classes = classes;
        encoder = new MiniLMEncoder();
        this.dropout = nn.Dropout(dropout);
        head = nn.Linear(MiniLMShape.Hidden, classes);
        RegisterComponents();
    }

    public int Classes { get; }

    public MiniLMEncoder Encoder => encoder;

    public Linear Head => head;

    /// <summary>Logits [B, classes].</summary>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask) => Classify(Embed(inputIds, attentionMask));

    /// <summary>Mean of the token vectors where the mask is 1: [B, 384].</summary>
    public Tensor Embed(Tensor inputIds, Tensor attentionMask)
    {
        using var scope = NewDisposeScope();
        var hidden = encoder.forward(inputIds, attentionMask);
        var m = attentionMask.to_type(ScalarType.Float32).unsqueeze(-1);
        var pooled = hidden.mul(m).sum(1).div(m.sum(1).clamp_min(1e-9));
        return pooled.MoveToOuterDisposeScope();
    }

    /// <summary>Dropout (training only) then the linear head: logits [B, classes].</summary>
    public Tensor Classify(Tensor pooled) => head.forward(dropout.forward(pooled));

    /// <summary>Sets the head's weight [classes, 384] and bias (a head-only checkpoint's head.onnx).</summary>
    internal void SetHeadWeights(float[] weight, float[] bias)
    {
        using var _ = no_grad();
        using var w = tensor(weight, [Classes, MiniLMShape.Hidden]);
        using var b = tensor(bias, [Classes]);
        head.weight!.copy_(w);
        head.bias!.copy_(b);
    }

    /// <summary>Head weight [classes, 384] and bias, for ONNX export.</summary>
    internal (float[] Weight, float[] Bias) HeadWeights()
    {
        using var w = head.weight!.detach().cpu().contiguous();
        using var b = head.bias!.detach().cpu().contiguous();
        return (w.data<float>().ToArray(), b.data<float>().ToArray());
    }
}
