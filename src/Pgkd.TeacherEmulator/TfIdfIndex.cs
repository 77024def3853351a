namespace Pgkd.TeacherEmulator;

/// <summary>
/// TF-IDF vectors over a fixed corpus (the pool), L2-normalised, so cosine similarity is a sparse dot
/// product. Tokens: lower-case runs of letters and digits, two characters or more. IDF is sklearn's
/// smoothed form ln((1 + n) / (1 + df)) + 1. Queries (hard negatives) reuse the corpus vocabulary and
/// IDF; words the pool never uses are ignored. Pure C#, deterministic, about a millisecond per
/// thousand texts; nearest neighbours through an inverted index (<see cref="Nearest"/>).
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

        // Postings in ascending document order: a document's neighbours are found from the terms it has, not from every pair.
        var postings = new List<(int Document, double Weight)>[_vocabulary.Count];
        for (var d = 0; d < _documents.Length; d++)
            for (var k = 0; k < _documents[d].Ids.Length; k++)
                (postings[_documents[d].Ids[k]] ??= []).Add((d, _documents[d].Weights[k]));
        _postings = postings.Select(p => p?.ToArray() ?? []).ToArray();
    }

    private readonly (int Document, double Weight)[][] _postings;

    [ThreadStatic] private static double[]? _scores;

    /// <summary>
    /// The <paramref name="k"/> documents most similar to document <paramref name="index"/> (itself excluded), by cosine
    /// descending and then index ascending; documents sharing no term with it (cosine 0) come last, in index order. The same
    /// list and the same similarities, bit for bit, as comparing it with every document through <see cref="Cosine"/>: each
    /// similarity is summed over the shared terms in ascending term order, as Cosine sums it. It only visits the documents
    /// that share a term, so a pool's neighbourhoods cost its postings, not all pairs.
    /// </summary>
    public IReadOnlyList<(int Index, double Similarity)> Nearest(int index, int k)
    {
        var own = _documents[index];
        var scores = _scores is { } buffer && buffer.Length >= _documents.Length ? buffer : _scores = new double[_documents.Length];
        var touched = new List<int>();
        for (var t = 0; t < own.Ids.Length; t++)
        {
            var weight = own.Weights[t];
            foreach (var (document, other) in _postings[own.Ids[t]])
            {
                if (scores[document] == 0) touched.Add(document);
                scores[document] += weight * other;
            }
        }
        // The best k kept sorted as they come (k is small; sorting every touched document would cost more than scoring them).
        var ranked = new List<(int Index, double Similarity)>(Math.Min(k, touched.Count) + 1);
        foreach (var d in touched)
        {
            var score = scores[d];
            scores[d] = 0;
            if (d == index || score <= 0 || k == 0) continue;
            if (ranked.Count == k && !Before(score, d, ranked[^1])) continue;
            var at = ranked.Count;
            while (at > 0 && Before(score, d, ranked[at - 1])) at--;
            ranked.Insert(at, (d, score));
            if (ranked.Count > k) ranked.RemoveAt(k);
        }
        // Fewer neighbours share a term than asked for: the rest tie at 0 and go in index order.
        for (var d = 0; ranked.Count < k && d < _documents.Length; d++)
            if (d != index && !ranked.Exists(x => x.Index == d)) ranked.Add((d, 0.0));
        return ranked;

        static bool Before(double score, int document, (int Index, double Similarity) other) =>
            score > other.Similarity || (score == other.Similarity && document < other.Index);
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
