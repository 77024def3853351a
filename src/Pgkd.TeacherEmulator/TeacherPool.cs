using Pgkd.Core.Data;

namespace Pgkd.TeacherEmulator;

/// <summary>
/// The labeled texts the emulator "writes" from, with a TF-IDF index over them. Texts whose
/// normalised hash (<see cref="TextHash"/>) occurs in any exclude file (validation, test, seed
/// training data) are dropped when the pool loads, so the emulator can never hand out held-out data
/// whatever a prompt says; texts shown in a prompt are excluded per request as well (see
/// <see cref="TeacherEngine"/>).
/// </summary>
public sealed class TeacherPool
{
    private readonly Dictionary<string, int[]> _byLabel;

    public TeacherPool(LabelSet labels, IReadOnlyList<LabeledExample> examples, IReadOnlySet<string> excludedHashes, string source)
    {
        Labels = labels;
        Source = source;
        var kept = new List<LabeledExample>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in examples)
        {
            var hash = TextHash.Of(e.Text);
            if (excludedHashes.Contains(hash)) { ExcludedCount++; continue; }
            if (!seen.Add(hash)) continue;
            kept.Add(e);
        }
        Examples = kept;
        Hashes = kept.Select(e => TextHash.Of(e.Text)).ToArray();
        Index = new TfIdfIndex(kept.Select(e => e.Text).ToArray());
        _byLabel = labels.Names.ToDictionary(
            n => n,
            n => Enumerable.Range(0, kept.Count).Where(i => string.Equals(kept[i].Label, n, StringComparison.Ordinal)).ToArray(),
            StringComparer.OrdinalIgnoreCase);
    }

    public LabelSet Labels { get; }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<(int Index, int K), double> _agreement = new();

    /// <summary>
    /// Share of the <paramref name="k"/> nearest other pool texts (TF-IDF cosine) that have the same label as text
    /// <paramref name="index"/>: near 1 for a text typical of its class, low for an ambiguous or mislabeled-looking one.
    /// Computed on first use and remembered.
    /// </summary>
    public double LabelAgreement(int index, int k) => _agreement.GetOrAdd((index, k), key =>
    {
        var nearest = Index.Nearest(key.Index, key.K);
        return nearest.Count == 0 ? 1 : nearest.Count(x => string.Equals(Examples[x.Index].Label, Examples[key.Index].Label, StringComparison.Ordinal)) / (double)nearest.Count;
    });

    /// <summary>Every text's label agreement with its <paramref name="k"/> nearest, computed in parallel and remembered.</summary>
    public void WarmUp(int k, CancellationToken cancellationToken = default) =>
        Parallel.For(0, Examples.Count, new ParallelOptions { CancellationToken = cancellationToken }, i => LabelAgreement(i, k));

    public IReadOnlyList<LabeledExample> Examples { get; }

    /// <summary><see cref="TextHash"/> of each example, same order.</summary>
    public IReadOnlyList<string> Hashes { get; }

    public TfIdfIndex Index { get; }

    /// <summary>Where the pool came from, for logs.</summary>
    public string Source { get; }

    /// <summary>Pool texts dropped because an exclude file holds them.</summary>
    public int ExcludedCount { get; }

    /// <summary>Indices of the pool texts of a label (case-insensitive); empty for an unknown label.</summary>
    public IReadOnlyList<int> OfLabel(string label) =>
        label is not null && _byLabel.TryGetValue(label.Trim(), out var ids) ? ids : [];

    /// <summary>
    /// Loads the pool named by the options: <see cref="EmulatorOptions.PoolPath"/>, else AG News from
    /// ../shared/data, else the shipped demo data. Labels come from <c>labels.txt</c> beside the pool
    /// when present, else from the pool in order of first appearance.
    /// </summary>
    public static TeacherPool Load(EmulatorOptions options)
    {
        var poolPath = ResolvePoolPath(options);
        if (!File.Exists(poolPath))
            throw new InvalidOperationException($"Emulator:PoolPath '{poolPath}' does not exist: set Emulator:PoolPath to a labeled JSONL file.");
        var folder = Path.GetDirectoryName(poolPath)!;
        var labelsFile = Path.Combine(folder, "labels.txt");
        LabelSet labels;
        Dataset data;
        if (File.Exists(labelsFile))
        {
            labels = LabelSet.FromLines(File.ReadAllText(labelsFile));
            data = ReadJsonl(poolPath, labels);
        }
        else
        {
            data = ReadJsonl(poolPath, null);
            labels = new LabelSet(data.Examples.Select(e => e.Label).Distinct(StringComparer.OrdinalIgnoreCase).ToArray());
        }

        var excludePaths = options.ExcludePaths.Count > 0
            ? options.ExcludePaths
            : new[] { "seed_train.jsonl", "seed_val.jsonl", "test.jsonl" }.Select(f => Path.Combine(folder, f)).Where(File.Exists).ToList();
        var excluded = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in excludePaths)
        {
            if (!File.Exists(path))
                throw new InvalidOperationException($"Emulator:ExcludePaths names '{path}', which does not exist.");
            excluded.UnionWith(ReadJsonl(path, null).TextHashes());
        }
        return new TeacherPool(labels, data.Examples, excluded, poolPath);
    }

    public static string ResolvePoolPath(EmulatorOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.PoolPath)) return Path.GetFullPath(options.PoolPath);
        if (SharedData.FindDataset("agnews") is { } agnews && File.Exists(Path.Combine(agnews, "pool.jsonl")))
            return Path.Combine(agnews, "pool.jsonl");
        return Path.Combine(SharedData.DemoDataDirectory, "pool.jsonl");
    }

    private static Dataset ReadJsonl(string path, LabelSet? labels)
    {
        using var stream = File.OpenRead(path);
        return DatasetReader.ReadJsonl(stream, path, new DatasetReadOptions { Labels = labels, MaxTextLength = 100_000 });
    }
}
