using FastBertTokenizer;

namespace Pgkd.Student;

/// <summary>Token ids of a batch padded to its longest row: row-major [Count, Length] ids and attention mask.</summary>
public sealed record EncodedBatch(long[] InputIds, long[] AttentionMask, int Count, int Length);

/// <summary>
/// BERT WordPiece (uncased, accents stripped) over the MiniLM vocabulary, via FastBertTokenizer. The same
/// class tokenizes for training (TorchSharp) and serving (ONNX Runtime); checkpoints record
/// <see cref="VocabularyHash"/> so a model is never served with another vocabulary.
/// Every encoding starts with [CLS] and ends with [SEP]; a text longer than the maximum length is cut
/// so that the last kept position is still [SEP].
/// </summary>
public sealed class StudentTokenizer
{
    public const int PadId = 0;
    private readonly BertTokenizer _tokenizer = new();
    private readonly Lock _gate = new();

    private StudentTokenizer(string vocabulary)
    {
        using (var reader = new StringReader(vocabulary))
            _tokenizer.LoadVocabulary(reader, convertInputToLowercase: true);
        var lines = vocabulary.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        Vocabulary = lines;
        VocabularyHash = PretrainedMiniLM.Sha256Hex(System.Text.Encoding.UTF8.GetBytes(vocabulary));
        ClsId = Array.IndexOf(lines, "[CLS]");
        SepId = Array.IndexOf(lines, "[SEP]");
        UnkId = Array.IndexOf(lines, "[UNK]");
    }

    public static StudentTokenizer FromVocabularyFile(string path) => new(File.ReadAllText(path));

    public static StudentTokenizer ForPretrained(PretrainedMiniLM pretrained) => FromVocabularyFile(pretrained.VocabularyPath);

    /// <summary>SHA-256 (hex) of the vocabulary file.</summary>
    public string VocabularyHash { get; }

    public IReadOnlyList<string> Vocabulary { get; }

    public int ClsId { get; }

    public int SepId { get; }

    public int UnkId { get; }

    /// <summary>Ids of one text: [CLS] ... [SEP], at most <paramref name="maxLength"/> of them, no padding.</summary>
    public long[] Encode(string text, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), "At least 2 ([CLS] and [SEP]).");
        var ids = new long[maxLength];
        var mask = new long[maxLength];
        int n;
        lock (_gate)
            n = _tokenizer.Encode(text, ids, mask, padTo: null);
        var result = ids.AsSpan(0, n).ToArray();
        if (n == 0 || result[^1] != SepId)
        {
            // Defensive: keep the guarantee even if the library ever stops writing [SEP] on truncation.
            if (n == maxLength) result[^1] = SepId;
            else result = [.. result, SepId];
        }
        return result;
    }

    /// <summary>Encodes the texts and pads them (id 0, mask 0) to the longest one.</summary>
    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, int maxLength) => Pad(texts.Select(t => Encode(t, maxLength)).ToArray());

    /// <summary>Pads already encoded rows to the longest one.</summary>
    public static EncodedBatch Pad(IReadOnlyList<long[]> rows)
    {
        var length = rows.Count == 0 ? 0 : rows.Max(r => r.Length);
        var ids = new long[rows.Count * length];
        var mask = new long[rows.Count * length];
        for (var i = 0; i < rows.Count; i++)
        {
            rows[i].CopyTo(ids, i * length);
            mask.AsSpan(i * length, rows[i].Length).Fill(1);
        }
        return new EncodedBatch(ids, mask, rows.Count, length);
    }
}
