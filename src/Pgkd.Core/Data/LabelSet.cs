using System.Globalization;

namespace Pgkd.Core.Data;

/// <summary>A class label, with an optional description shown to the teacher.</summary>
public sealed record LabelDefinition(string Name, string? Description = null);

/// <summary>
/// The ordered classes of the task. The order is the student's output order (column i of the
/// probabilities is label i). Names are unique case-insensitively, so "sports" and "Sports" can
/// never be two classes and teacher replies can be matched leniently.
/// </summary>
public sealed class LabelSet
{
    private readonly LabelDefinition[] _labels;
    private readonly Dictionary<string, int> _index;

    public LabelSet(IEnumerable<LabelDefinition> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        _labels = labels.Select(l => l with { Name = (l.Name ?? "").Trim(), Description = NullIfBlank(l.Description) }).ToArray();
        if (_labels.Length == 0)
            throw new ArgumentException("A label set needs at least one label.", nameof(labels));
        _index = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < _labels.Length; i++)
        {
            var name = _labels[i].Name;
            if (name.Length == 0)
                throw new ArgumentException($"Label {i} has an empty name.", nameof(labels));
            if (!_index.TryAdd(name, i))
                throw new ArgumentException($"Label \"{name}\" appears twice (names are compared case-insensitively).", nameof(labels));
        }
    }

    public LabelSet(params string[] names) : this(names.Select(n => new LabelDefinition(n))) { }

    /// <summary>
    /// Reads a labels file's content: one label per non-blank line, optionally
    /// <c>name&lt;TAB&gt;description</c>. Lines starting with '#' are comments.
    /// </summary>
    public static LabelSet FromLines(string content)
    {
        ArgumentNullException.ThrowIfNull(content);
        var defs = content.Split('\n')
            .Select(l => l.TrimEnd('\r'))
            .Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#'))
            .Select(l =>
            {
                var tab = l.IndexOf('\t');
                return tab < 0 ? new LabelDefinition(l) : new LabelDefinition(l[..tab], l[(tab + 1)..]);
            });
        return new LabelSet(defs);
    }

    public int Count => _labels.Length;

    public IReadOnlyList<LabelDefinition> Labels => _labels;

    public IReadOnlyList<string> Names => _labels.Select(l => l.Name).ToArray();

    public string this[int index] => _labels[index].Name;

    /// <summary>Index of a label by name (case-insensitive, trimmed), or -1.</summary>
    public int IndexOf(string name) =>
        name is not null && _index.TryGetValue(name.Trim(), out var i) ? i : -1;

    /// <summary>
    /// Resolves what a teacher or a file wrote as a label: a name (case-insensitive) first, then a
    /// zero-based index written as digits. Names win so that numeric label names stay unambiguous.
    /// </summary>
    public bool TryResolve(string? token, out int index)
    {
        index = -1;
        if (token is null) return false;
        index = IndexOf(token);
        if (index >= 0) return true;
        if (int.TryParse(token.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < _labels.Length)
        {
            index = i;
            return true;
        }
        index = -1;
        return false;
    }

    /// <summary>"World, Sports, Business, Sci/Tech" — for error messages.</summary>
    public override string ToString() => string.Join(", ", _labels.Select(l => l.Name));

    private static string? NullIfBlank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}
