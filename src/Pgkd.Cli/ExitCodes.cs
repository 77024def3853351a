namespace Pgkd.Cli;

/// <summary>What <c>pgkd</c> exits with; scripts branch on these (README "Watching a run" lists them too).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The run that was watched ended Failed or Cancelled.</summary>
    public const int RunFailed = 1;
    /// <summary>Bad command line: unknown command or option, missing argument, a file that cannot be read.</summary>
    public const int Usage = 2;
    /// <summary>No answer from the gateway: not running, wrong URL, refused connection, timeout.</summary>
    public const int Unreachable = 3;
    /// <summary>The gateway refused the API key (missing or wrong).</summary>
    public const int Unauthorized = 4;
    /// <summary>The input was rejected: invalid datasets, labels or settings (found locally or by the gateway).</summary>
    public const int Rejected = 5;
    /// <summary>No such run, or it has no model yet (not completed).</summary>
    public const int NotFound = 6;
    /// <summary>Any other error answer from the gateway (5xx, unexpected status).</summary>
    public const int GatewayError = 7;
    /// <summary>Interrupted with Ctrl+C.</summary>
    public const int Interrupted = 130;

    public static readonly IReadOnlyList<(int Code, string Meaning)> All =
    [
        (Ok, "success"),
        (RunFailed, "the watched run ended Failed or Cancelled"),
        (Usage, "bad command line or unreadable file"),
        (Unreachable, "the gateway cannot be reached"),
        (Unauthorized, "the API key is missing or wrong"),
        (Rejected, "input rejected: invalid datasets, labels or settings"),
        (NotFound, "no such run, or it has no model yet"),
        (GatewayError, "other gateway error"),
        (Interrupted, "interrupted (Ctrl+C)"),
    ];
}

/// <summary>A failure to report to the user: one message (plus details, e.g. every rejected line) and an exit code.</summary>
public sealed class CliException(int exitCode, string message, IReadOnlyList<string>? details = null) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
    public IReadOnlyList<string> Details { get; } = details ?? [];
}
