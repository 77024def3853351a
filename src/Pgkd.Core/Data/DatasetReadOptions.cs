namespace Pgkd.Core.Data;

/// <summary>How strictly a dataset file is read.</summary>
public sealed record DatasetReadOptions
{
    /// <summary>When given, every label must resolve in it (case-insensitively) and is stored by its canonical name.</summary>
    public LabelSet? Labels { get; init; }

    /// <summary>Longest text accepted, in characters after normalisation.</summary>
    public int MaxTextLength { get; init; } = 2000;

    /// <summary>Reading stops after this many errors; they are all reported together.</summary>
    public int MaxErrors { get; init; } = 20;

    /// <summary>Apply <see cref="TextNormalizer"/> to each text (recommended; hashes normalise anyway).</summary>
    public bool NormalizeText { get; init; } = true;

    /// <summary>A file without a single example is an error unless this is set.</summary>
    public bool AllowEmpty { get; init; }

    public static DatasetReadOptions Default { get; } = new();
}
