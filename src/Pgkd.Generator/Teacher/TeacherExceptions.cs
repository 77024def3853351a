using Microsoft.Extensions.Hosting;

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

    /// <summary>The error's <c>code</c> in the body, when it has one.</summary>
    public string? ErrorCode { get; init; }

    /// <summary>The error's <c>message</c> in the body (else the SDK's message).</summary>
    public string? ServerMessage { get; init; }

    /// <summary>A 400 or 422 about <c>response_format</c>: the server does not take this response mode.</summary>
    public bool RefusesResponseFormat { get; init; }
}

/// <summary>
/// The teacher's content filter refused the prompt (HTTP 400 with error code <c>content_filter</c>). Not retried:
/// the same prompt is refused again. The round counts it and goes on with its other requests.
/// </summary>
public sealed class TeacherContentFilterException(string message, Exception? inner) : Exception(message, inner);

/// <summary>The run's token or dollar budget is spent: the run stops cleanly, nothing is lost.</summary>
public sealed class TeacherBudgetExceededException(string message, TeacherUsageTotals totals) : Exception(message)
{
    public TeacherUsageTotals Totals { get; } = totals;
}

/// <summary>
/// A round the teacher could not serve: a request ran out of retries, the teacher gave no reply within
/// <see cref="TeacherClientOptions.MaxWaitWithoutReply"/> or the round passed <see cref="TeacherClientOptions.MaxRoundTime"/>,
/// or the teacher is configured wrongly. A <see cref="PermanentStepException"/>: the bus does not redeliver it, and
/// the run fails with this message (the teacher, the round, the failed attempts by cause and the last error).
/// Nothing of the round is stored.
/// </summary>
public sealed class TeacherRoundFailedException(string message, int round, IReadOnlyList<TeacherFailedAttempt> failedAttempts, Exception? inner)
    : PermanentStepException(message, inner)
{
    public int Round { get; } = round;
    public IReadOnlyList<TeacherFailedAttempt> FailedAttempts { get; } = failedAttempts;
}
