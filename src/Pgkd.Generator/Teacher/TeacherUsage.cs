using Pgkd.Core.Teacher;

namespace Pgkd.Generator.Teacher;

/// <summary>A run's limits; null means no limit. Configuration: <c>Teacher:Budget:MaxTotalTokens</c>, <c>Teacher:Budget:MaxCostUsd</c>.</summary>
public sealed record TeacherBudget(long? MaxTotalTokens = null, decimal? MaxCostUsd = null)
{
    public static TeacherBudget Unlimited { get; } = new();

    /// <summary>This budget's limits, each missing one taken from <paramref name="fallback"/> (e.g. a run's settings over the service's <c>Teacher:Budget</c>).</summary>
    public TeacherBudget OrElse(TeacherBudget fallback) =>
        new(MaxTotalTokens ?? fallback.MaxTotalTokens, MaxCostUsd ?? fallback.MaxCostUsd);
}

/// <summary>What a run has spent so far.</summary>
public sealed record TeacherUsageTotals(int Calls, long PromptTokens, long CompletionTokens, decimal CostUsd)
{
    public static TeacherUsageTotals Zero { get; } = new(0, 0, 0, 0m);
    public long TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>
/// One completed teacher request: tokens from the reply's <c>usage</c>, the latency of the attempt
/// that succeeded, the whole time including retries and backoff, and why each earlier attempt failed.
/// </summary>
public sealed record TeacherCallRecord(
    string RunId,
    int Round,
    TeacherCallPurpose Purpose,
    string Model,
    int PromptTokens,
    int CompletionTokens,
    decimal CostUsd,
    TimeSpan Latency,
    TimeSpan Elapsed,
    int Attempts,
    IReadOnlyList<TeacherRetry> Retries,
    int CachedPromptTokens = 0,
    decimal CachedSavingsUsd = 0m,
    TeacherResponseMode ResponseMode = TeacherResponseMode.JsonObject,
    TeacherFinish Finish = TeacherFinish.Stop,
    bool Batch = false)
{
    public int TotalTokens => PromptTokens + CompletionTokens;
}

public enum TeacherCallPurpose { Generate, Repair, Verify }

/// <summary>How a reply ended (<c>finish_reason</c>), as far as the run cares.</summary>
public enum TeacherFinish
{
    /// <summary>The model finished (<c>stop</c>, or anything else that is not one of the two below).</summary>
    Stop,

    /// <summary><c>length</c>: cut off at the output limit; its complete items are kept.</summary>
    Length,

    /// <summary><c>content_filter</c>: the provider's content filter withheld the reply.</summary>
    ContentFilter,
}

/// <summary>
/// How the teacher is asked for JSON (<c>response_format</c>), best first: a strict JSON Schema whose <c>label</c> is
/// an enum of the run's labels, then JSON mode (any JSON object), then plain text (the prompt alone asks for JSON).
/// </summary>
public enum TeacherResponseMode
{
    JsonSchema,
    JsonObject,
    Text,
}

/// <summary><c>Teacher:ResponseFormat</c>: Auto starts with json_schema and falls back once per deployment; the others force one mode.</summary>
public enum TeacherResponseFormat
{
    Auto,
    JsonSchema,
    JsonObject,
    Text,
}

public static class TeacherResponseModes
{
    /// <summary>The mode as the API and the run status name it: <c>json_schema</c>, <c>json_object</c>, <c>text</c>.</summary>
    public static string WireName(this TeacherResponseMode mode) => mode switch
    {
        TeacherResponseMode.JsonSchema => "json_schema",
        TeacherResponseMode.JsonObject => "json_object",
        _ => "text",
    };
}

/// <summary>Why a teacher attempt failed and was retried; the run status counts retries by these names.</summary>
public enum TeacherRetryCause
{
    /// <summary>HTTP 429 (the teacher's rate limit; its Retry-After is honoured).</summary>
    RateLimited,

    /// <summary>HTTP 5xx.</summary>
    ServerError,

    /// <summary>No answer within <c>Teacher:RequestTimeout</c>, or HTTP 408.</summary>
    Timeout,

    /// <summary>The connection failed or broke (refused, reset, DNS).</summary>
    Network,
}

/// <summary>A failed attempt and the wait chosen before the next one (from Retry-After when the teacher sent one).</summary>
public sealed record TeacherRetry(int Attempt, string Reason, int? Status, TimeSpan Delay, bool FromRetryAfter,
    TeacherRetryCause Cause = TeacherRetryCause.Network);

/// <summary>A teacher attempt that failed (retried or not), as the ledger saw it: for counts and for the last error of a failed round.</summary>
public sealed record TeacherFailedAttempt(TeacherRetryCause Cause, string Reason, DateTimeOffset At);

/// <summary>
/// A run's spend, thread-safe. The client checks it before every request (generation or repair)
/// and records every completed call. A request is refused, with
/// <see cref="TeacherBudgetExceededException"/>, when the tokens spent plus the request's estimated
/// prompt tokens would pass <see cref="TeacherBudget.MaxTotalTokens"/>, or when the dollars spent
/// (plus the estimated prompt's price) would pass <see cref="TeacherBudget.MaxCostUsd"/>. One
/// request's completion can still take the run a little past the limit; none starts after it.
/// Create it from the totals persisted after the last round to carry the budget across rounds.
/// </summary>
public sealed class TeacherUsageLedger(TeacherBudget budget, TeacherUsageTotals? spentBefore = null)
{
    private readonly Lock _gate = new();
    private readonly List<TeacherCallRecord> _calls = [];
    private readonly List<TeacherFailedAttempt> _failures = [];
    private TeacherUsageTotals _totals = spentBefore ?? TeacherUsageTotals.Zero;

    /// <summary>A round's ledger under the run's budget, counting what earlier rounds spent.</summary>
    public static TeacherUsageLedger ForRun(Pgkd.Core.Run.RunConfiguration config, long tokensSpent, decimal costSpent) =>
        new(new TeacherBudget(config.TeacherTokenBudget, config.TeacherCostBudgetUsd), new TeacherUsageTotals(0, tokensSpent, 0, costSpent));

    public TeacherBudget Budget { get; } = budget;

    public TeacherUsageTotals Totals { get { lock (_gate) return _totals; } }

    /// <summary>The calls recorded by this ledger (not those in <c>spentBefore</c>).</summary>
    public IReadOnlyList<TeacherCallRecord> Calls { get { lock (_gate) return _calls.ToArray(); } }

    /// <summary>Every failed attempt of this ledger's requests, in order, including those of requests that never succeeded.</summary>
    public IReadOnlyList<TeacherFailedAttempt> FailedAttempts { get { lock (_gate) return _failures.ToArray(); } }

    /// <summary>Called by the client the moment an attempt fails, before it waits or gives up.</summary>
    public void RecordFailedAttempt(TeacherRetryCause cause, string reason)
    {
        lock (_gate) _failures.Add(new TeacherFailedAttempt(cause, reason, DateTimeOffset.UtcNow));
    }

    public void EnsureCanSpend(int estimatedPromptTokens, TokenPrice price)
    {
        lock (_gate)
        {
            var t = _totals;
            if (Budget.MaxTotalTokens is { } maxTokens && t.TotalTokens + estimatedPromptTokens > maxTokens)
                throw new TeacherBudgetExceededException(
                    $"The run's token budget is spent: {t.TotalTokens:N0} of {maxTokens:N0} tokens used, and the next request needs about {estimatedPromptTokens:N0} prompt tokens (Teacher:Budget:MaxTotalTokens).", t);
            if (Budget.MaxCostUsd is { } maxCost && t.CostUsd + price.Cost(estimatedPromptTokens, 0) > maxCost)
                throw new TeacherBudgetExceededException(
                    $"The run's dollar budget is spent: ${t.CostUsd:0.######} of ${maxCost:0.######} used (Teacher:Budget:MaxCostUsd).", t);
        }
    }

    public void Record(TeacherCallRecord call)
    {
        lock (_gate)
        {
            _calls.Add(call);
            _totals = new TeacherUsageTotals(_totals.Calls + 1, _totals.PromptTokens + call.PromptTokens,
                _totals.CompletionTokens + call.CompletionTokens, _totals.CostUsd + call.CostUsd);
        }
    }
}
