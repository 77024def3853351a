namespace Pgkd.Core.Data;

/// <summary>One problem in an input file: where (source name and 1-based line) and what.</summary>
public sealed record DatasetError(string Source, int Line, string Problem)
{
    public override string ToString() => $"{Source} line {Line}: {Problem}";
}

/// <summary>
/// Thrown when a dataset file has problems. Carries several errors at once (up to the reader's
/// limit) so a user can fix a file in one pass rather than one error per upload.
/// </summary>
public sealed class DatasetFormatException : Exception
{
    public DatasetFormatException(IReadOnlyList<DatasetError> errors, bool moreErrorsOmitted)
        : base(BuildMessage(errors, moreErrorsOmitted))
    {
        Errors = errors;
        MoreErrorsOmitted = moreErrorsOmitted;
    }

    public IReadOnlyList<DatasetError> Errors { get; }

    /// <summary>True when reading stopped at the error limit and later lines were not checked.</summary>
    public bool MoreErrorsOmitted { get; }

    private static string BuildMessage(IReadOnlyList<DatasetError> errors, bool more)
    {
        var lines = string.Join(Environment.NewLine, errors.Select(e => e.ToString()));
        return more ? lines + Environment.NewLine + "(more errors omitted)" : lines;
    }
}
