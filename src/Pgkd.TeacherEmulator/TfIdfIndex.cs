namespace Pgkd.TeacherEmulator;

/// <summary>
/// TF-IDF vectors over a fixed corpus (the pool), L2-normalised, so cosine similarity is a sparse dot
/// product. Tokens: lower-case runs of letters and digits, two characters or more. IDF is sklearn's
/// smoothed form ln((1 + n) / (1 + df)) + 1. Queries (hard negatives) reuse the corpus vocabulary and
/// IDF; words the pool never uses are ignored. Pure C#, deterministic, about a millisecond per
/// thousand texts.
/// </summary>
public sealed class TfIdfIndex
{
    private readonly Dictionary<string, int> _vocabulary = new(StringComparer.Ordinal);
    private readonly double[] _idf;
    private readonly SparseVector[] _documents;

    public TfIdfIndex(IReadOnlyList<string> corpus)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        var tokenized = corpus.Select(Tokenize).ToArray();
        var df = new List<int>();
        foreach (var tokens in tokenized)
        {
            foreach (var token in tokens.Distinct())
            {
                if (!_vocabulary.TryGetValue(token, out var id))
                {
                    id = _vocabulary.Count;
                    _vocabulary.Add(token, id);
                    df.Add(0);
                }
                df[id]++;
            }
        }
        var n = corpus.Count;
        _idf = df.Select(d => Math.Log((1.0 + n) / (1.0 + d)) + 1.0).ToArray();
        _documents = tokenized.Select(Vectorize).ToArray();
    }

    public int Count => _documents.Length;

    public SparseVector Document(int index) => _documents[index];

    /// <summary>The vector of any text in the corpus's space.</summary>
    public SparseVector Embed(string text) => Vectorize(Tokenize(text));

    public static double Cosine(SparseVector a, SparseVector b)
    {
        double sum = 0;
        int i = 0, j = 0;
        while (i < a.Ids.Length && j < b.Ids.Length)
        {
            var c = a.Ids[i].CompareTo(b.Ids[j]);
            if (c == 0) sum += a.Weights[i++] * b.Weights[j++];
            else if (c < 0) i++;
            else j++;
        }
        return sum;
    }

    internal static List<string> Tokenize(string text)
    {
        var tokens = new List<string>();
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var inWord = i < text.Length && char.IsLetterOrDigit(text[i]);
            if (inWord && start < 0) start = i;
            else if (!inWord && start >= 0)
            {
                if (i - start >= 2) tokens.Add(text[start..i].ToLowerInvariant());
                start = -1;
            }
        }
        return tokens;
    }

    private SparseVector Vectorize(List<string> tokens)
    {
        var tf = new Dictionary<int, int>();
        foreach (var t in tokens)
            if (_vocabulary.TryGetValue(t, out var id)) tf[id] = tf.GetValueOrDefault(id) + 1;
        var ids = tf.Keys.Order().ToArray();
        var weights = ids.Select(id => tf[id] * _idf[id]).ToArray();
        var norm = Math.Sqrt(weights.Sum(w => w * w));
        if (norm > 0) for (var k = 0; k < weights.Length; k++) weights[k] /= norm;
        return new SparseVector(ids, weights);
    }
}

/// <summary>Term ids in ascending order and their weights.</summary>
public sealed record SparseVector(int[] Ids, double[] Weights);
