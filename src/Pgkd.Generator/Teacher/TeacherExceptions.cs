namespace Pgkd.Generator.Teacher;

/// <summary>
/// The teacher is configured wrongly (no endpoint, wrong key, unknown deployment). Never retried:
/// the message names <see cref="Setting"/>, the setting to fix.
/// </summary>
public sealed class TeacherConfigurationException(string setting, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public string Setting { get; } = setting;
}

/// <summary>The teacher kept failing (429, 5xx, timeouts, network) after every retry.</summary>
public sealed class TeacherUnavailableException(string message, int attempts, int? lastStatus, Exception? inner)
    : Exception(message, inner)
{
    public int Attempts { get; } = attempts;
    public int? LastStatus { get; } = lastStatus;
}

/// <summary>The teacher refused the request itself (HTTP 400 and other non-transient answers).</summary>
public sealed class TeacherRequestException(string message, int status, Exception? inner) : Exception(message, inner)
{
    public int Status { get; } = status;
}

/// <summary>The run's token or dollar budget is spent: the run stops cleanly, nothing is lost.</summary>
public sealed class TeacherBudgetExceededException(string message, TeacherUsageTotals totals) : Exception(message)
{
    public TeacherUsageTotals Totals { get; } = totals;
}
