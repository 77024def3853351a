using Pgkd.Core;

namespace Pgkd.TeacherEmulator;

public enum InjectedFault { None, TooManyRequests, ServerError, Hang, Malformed, PromptFiltered, ReplyFiltered }

/// <summary>
/// Decides, per request, which fault (if any) to inject. One seeded stream for the process: the
/// same sequence of requests meets the same faults. Decisions are drawn in a fixed order (429, 500,
/// hang, malformed, then the content filter's two), at most one per request, and stop after
/// <see cref="FaultOptions.MaxInjected"/>. The content-filter draws happen only when one of their rates is set, so
/// configurations without them meet exactly the faults they met before those existed.
/// </summary>
public sealed class FaultInjector(FaultOptions options, int seed)
{
    private readonly SeededRandom _random = new(SeededRandom.Derive(unchecked((ulong)seed), 0xFA017));
    private readonly Lock _gate = new();
    private int _injected;

    public InjectedFault Next()
    {
        lock (_gate)
        {
            // Always draw the same number of values so one rate does not shift another's stream.
            double a = _random.NextDouble(), b = _random.NextDouble(), c = _random.NextDouble(), d = _random.NextDouble();
            double e = 1, f = 1;
            if (options.PromptFilterRate > 0 || options.ContentFilterRate > 0) (e, f) = (_random.NextDouble(), _random.NextDouble());
            if (options.MaxInjected > 0 && _injected >= options.MaxInjected) return InjectedFault.None;
            var fault = a < options.TooManyRequestsRate ? InjectedFault.TooManyRequests
                : b < options.ServerErrorRate ? InjectedFault.ServerError
                : c < options.HangRate ? InjectedFault.Hang
                : d < options.MalformedReplyRate ? InjectedFault.Malformed
                : e < options.PromptFilterRate ? InjectedFault.PromptFiltered
                : f < options.ContentFilterRate ? InjectedFault.ReplyFiltered
                : InjectedFault.None;
            if (fault != InjectedFault.None) _injected++;
            return fault;
        }
    }
}

/// <summary>Counters the tests (and <c>GET /emulator/stats</c>) read.</summary>
public sealed class EmulatorStats
{
    private long _requests, _completed, _unauthorized, _notFound, _tooMany, _serverErrors, _hangs, _malformed;
    private long _promptsFiltered, _repliesFiltered, _truncated, _formatRefusals, _cachedTokens;

    public long Requests => Interlocked.Read(ref _requests);
    public long Completed => Interlocked.Read(ref _completed);
    public long Unauthorized => Interlocked.Read(ref _unauthorized);
    public long NotFound => Interlocked.Read(ref _notFound);
    public long TooManyRequests => Interlocked.Read(ref _tooMany);
    public long ServerErrors => Interlocked.Read(ref _serverErrors);
    public long Hangs => Interlocked.Read(ref _hangs);
    public long Malformed => Interlocked.Read(ref _malformed);
    public long PromptsFiltered => Interlocked.Read(ref _promptsFiltered);
    public long RepliesFiltered => Interlocked.Read(ref _repliesFiltered);
    /// <summary>Replies cut off at the output limit (finish_reason length).</summary>
    public long Truncated => Interlocked.Read(ref _truncated);
    /// <summary>Requests refused because of their response_format (a type this server does not take, or an invalid schema).</summary>
    public long ResponseFormatRefusals => Interlocked.Read(ref _formatRefusals);
    public long CachedTokens => Interlocked.Read(ref _cachedTokens);

    internal void Truncate() => Interlocked.Increment(ref _truncated);
    internal void RefuseFormat() => Interlocked.Increment(ref _formatRefusals);
    internal void Cached(int tokens) => Interlocked.Add(ref _cachedTokens, tokens);

    internal void Request() => Interlocked.Increment(ref _requests);
    internal void Complete() => Interlocked.Increment(ref _completed);
    internal void Unauthorize() => Interlocked.Increment(ref _unauthorized);
    internal void NotFoundOne() => Interlocked.Increment(ref _notFound);

    internal void Injected(InjectedFault fault)
    {
        switch (fault)
        {
            case InjectedFault.TooManyRequests: Interlocked.Increment(ref _tooMany); break;
            case InjectedFault.ServerError: Interlocked.Increment(ref _serverErrors); break;
            case InjectedFault.Hang: Interlocked.Increment(ref _hangs); break;
            case InjectedFault.Malformed: Interlocked.Increment(ref _malformed); break;
            case InjectedFault.PromptFiltered: Interlocked.Increment(ref _promptsFiltered); break;
            case InjectedFault.ReplyFiltered: Interlocked.Increment(ref _repliesFiltered); break;
        }
    }

    public object Snapshot() => new
    {
        requests = Requests, completed = Completed, unauthorized = Unauthorized, notFound = NotFound,
        tooManyRequests = TooManyRequests, serverErrors = ServerErrors, hangs = Hangs, malformed = Malformed,
        promptsFiltered = PromptsFiltered, repliesFiltered = RepliesFiltered, truncated = Truncated,
        responseFormatRefusals = ResponseFormatRefusals, cachedTokens = CachedTokens,
    };
}
