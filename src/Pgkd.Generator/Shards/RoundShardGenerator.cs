using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Core.Teacher;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Shards;

/// <summary>One round's request: the Core prompt input with the round's whole allocation, and what replies are checked against.</summary>
public sealed record RoundShardRequest(
    string RunId,
    int Round,
    TeacherPromptInput PromptInput,
    TeacherReplyContext ReplyContext,
    TeacherPromptOptions? PromptOptions = null,
    int? SamplesPerRequest = null,
    bool BatchApi = false)
{
    /// <summary>
    /// A PGKD round's request: the allocation and prompt switches the planner chose, the feedback report and hard
    /// negatives, few-shot examples from the seed set, and replies checked against everything trained on and held out.
    /// </summary>
    public static RoundShardRequest ForRound(string runId, int round, RunConfiguration config, LabelSet labels, string taskDescription,
        IReadOnlyList<int> allocation, TeacherPromptOptions promptOptions, Dataset seedTrain, ValidationReport report,
        HardNegativeSelection hardNegatives, IReadOnlySet<string> trainingHashes, IReadOnlySet<string> heldOutHashes, int? samplesPerRequest,
        AllocationBounds? bounds = null) =>
        new(runId, round,
            new TeacherPromptInput
            {
                Labels = labels,
                TaskDescription = taskDescription,
                Allocation = allocation,
                FewShotPool = seedTrain.Examples,
                Report = report,
                Selection = hardNegatives,
                Round = round,
                Seed = config.SeedForRound(round),
                // One few-shot draw for the whole run: every request then shares its prompt's start (prompt caching).
                FewShotSeed = config.Seed,
                RoundBounds = bounds,
            },
            config.ReplyContext(labels, trainingHashes, heldOutHashes),
            promptOptions,
            samplesPerRequest,
            config.BatchApi);
}

public enum ShardStop
{
    /// <summary>Every batch was asked.</summary>
    Completed,

    /// <summary>The run budget was reached; the shard holds what was accepted before.</summary>
    BudgetReached,
}

/// <summary>
/// A round's validated teacher samples (the dataset shard the trainer appends) and its accounting:
/// requested and accepted counts per label (label-set order), rejections by reason, replies that
/// stayed unusable after repair, every teacher call, and why generation stopped.
/// </summary>
public sealed record RoundShard(
    string RunId,
    int Round,
    Dataset Examples,
    IReadOnlyList<int> Requested,
    IReadOnlyList<int> AcceptedByLabel,
    IReadOnlyDictionary<RejectReason, int> Rejected,
    int UnusableReplies,
    IReadOnlyList<TeacherCallRecord> Calls,
    ShardStop Stop,
    string? StopReason)
{
    /// <summary>Teacher attempts that failed and were retried, by cause (429, 5xx, timeout, network); requests that finally succeeded.</summary>
    public IReadOnlyDictionary<TeacherRetryCause, int> RetriesByCause =>
        Calls.SelectMany(c => c.Retries).GroupBy(r => r.Cause).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count());

    /// <summary>Replies that did not parse and were asked again once (the repair turn); <see cref="UnusableReplies"/> of them stayed unusable.</summary>
    public int RepairRequests => Calls.Count(c => c.Purpose == TeacherCallPurpose.Repair);

    /// <summary>Malformed replies that the repair turn fixed.</summary>
    public int RepairedReplies => RepairRequests - UnusableReplies;

    public int PromptTokens => Calls.Sum(c => c.PromptTokens);
    public int CompletionTokens => Calls.Sum(c => c.CompletionTokens);
    public decimal CostUsd => Calls.Sum(c => c.CostUsd);

    /// <summary>Prompt tokens the provider served from its cache, and what that saved against the full input price.</summary>
    public int CachedPromptTokens => Calls.Sum(c => c.CachedPromptTokens);
    public decimal CachedSavingsUsd => Calls.Sum(c => c.CachedSavingsUsd);

    /// <summary>The response mode that served most of the round's requests (<c>json_schema</c>, <c>json_object</c>, <c>text</c>).</summary>
    public string? ResponseMode => Calls.Count == 0 ? null
        : Calls.GroupBy(c => c.ResponseMode).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key.WireName();

    /// <summary>Requests whose prompt the content filter refused (HTTP 400 content_filter), and replies it withheld (finish_reason content_filter).</summary>
    public int PromptsFiltered { get; init; }
    public int RepliesFiltered { get; init; }

    /// <summary>Replies cut off at the output limit (finish_reason length), and the samples they were asked for but did not bring.</summary>
    public int TruncatedReplies { get; init; }
    public int LostToTruncation { get; init; }

    /// <summary>The samples per request at the round's end: lowered when a reply was cut off, carried to the run's next round.</summary>
    public int SamplesPerRequest { get; init; }

    /// <summary>The API the round went through: <c>chat</c> (a request per batch) or <c>batch</c> (the Batch API).</summary>
    public string Api { get; init; } = "chat";

    /// <summary>The shard as JSONL (what goes to blob storage); <see cref="DatasetReader.ReadJsonl"/> reads it back unchanged.</summary>
    public void WriteJsonl(Stream stream) => DatasetWriter.WriteJsonl(stream, Examples.Examples);
}

/// <summary>Configuration section <c>Generator</c>.</summary>
public sealed class RoundShardOptions
{
    public const string Section = "Generator";

    /// <summary>Samples asked per teacher request (public PGKD code uses 16).</summary>
    public int SamplesPerRequest { get; set; } = 16;

    /// <summary>Teacher requests in flight at once.</summary>
    public int MaxParallelRequests { get; set; } = 2;
}

/// <summary>
/// Turns one round into a dataset shard: splits the round's per-label allocation into batches of
/// about <see cref="RoundShardOptions.SamplesPerRequest"/> (each batch a proportional mix of labels),
/// builds each batch's prompt with <see cref="TeacherPromptBuilder"/> (seed varied per batch so the
/// few-shot examples differ), asks the <see cref="TeacherClient"/>, and merges the accepted samples
/// in batch order, dropping repeats across batches. When the budget stops the run the shard keeps
/// what was accepted so far and says so. A teacher that cannot serve the round (a request out of
/// retries, no reply for <see cref="TeacherClientOptions.MaxWaitWithoutReply"/>, the round past
/// <see cref="TeacherClientOptions.MaxRoundTime"/>, a configuration error) ends it with a
/// <see cref="TeacherRoundFailedException"/> naming the teacher, the round and the last error; the other
/// requests in flight are cancelled and nothing is returned, so nothing of the round is stored.
/// </summary>
public sealed class RoundShardGenerator(TeacherClient teacher, RoundShardOptions? options = null)
{
    private readonly RoundShardOptions _options = options ?? new RoundShardOptions();

    public async Task<RoundShard> GenerateAsync(RoundShardRequest request, TeacherUsageLedger ledger, CancellationToken cancellationToken = default,
        ITeacherBatchJournal? journal = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(ledger);
        // The run's samples per request: the configured size, or what an earlier cut-off reply lowered it to.
        var perRequest = Math.Max(1, Math.Min(request.SamplesPerRequest ?? int.MaxValue, _options.SamplesPerRequest));
        var batches = SplitAllocation(request.PromptInput.Allocation, perRequest);
        if (request.BatchApi) return await GenerateThroughBatchAsync(request, ledger, journal, perRequest, batches, cancellationToken);
        var results = new List<(TeacherResult Result, int Requested)>[batches.Count];
        string? budgetStop = null;
        using var gate = new SemaphoreSlim(Math.Max(1, _options.MaxParallelRequests));
        var bounds = teacher.Options;
        // Three ways the round's requests end early: the caller (shutdown), a failed request (stop), and the round's
        // time bounds: no reply for MaxWaitWithoutReply (re-armed on each reply), or MaxRoundTime in all.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var silence = new CancellationTokenSource(bounds.MaxWaitWithoutReply);
        using var roundTime = new CancellationTokenSource(bounds.MaxRoundTime);
        using var teacherToken = CancellationTokenSource.CreateLinkedTokenSource(stop.Token, silence.Token, roundTime.Token);
        var rearm = new Lock();
        var started = System.Diagnostics.Stopwatch.StartNew();

        async Task RunBatch(int b)
        {
            await gate.WaitAsync(teacherToken.Token);
            try
            {
                // A batch is asked in one request unless a cut-off reply lowered the size since the split: then in pieces of the
                // current size, each taken as a proportional share of what is left (SplitAllocation's first batch).
                var left = batches[b];
                var answers = results[b] = [];
                for (var piece = 0; left.Sum() > 0; piece++)
                {
                    if (budgetStop is not null) return;
                    var ask = SplitAllocation(left, Math.Max(1, Volatile.Read(ref perRequest)))[0];
                    left = left.Zip(ask, (l, a) => l - a).ToArray();
                    var seed = unchecked(request.PromptInput.Seed * 31 + b);
                    var input = request.PromptInput with { Allocation = ask, Seed = piece == 0 ? seed : unchecked(seed * 17 + piece) };
                    var prompt = TeacherPromptBuilder.Build(input, request.PromptOptions, teacher.Tokenizer.Counter);
                    var result = await teacher.GenerateAsync(prompt, request.ReplyContext, new TeacherCallContext(request.RunId, request.Round), ledger, teacherToken.Token);
                    answers.Add((result, ask.Sum()));
                    if (result.Finish == TeacherFinish.Length)
                    {
                        var lower = ReplyTruncation.NextSamplesPerRequest(ask.Sum(), result.Reply.ItemCount);
                        int seen;
                        while (lower < (seen = Volatile.Read(ref perRequest)) && Interlocked.CompareExchange(ref perRequest, lower, seen) != seen) { }
                    }
                    lock (rearm)
                        if (!silence.IsCancellationRequested) silence.CancelAfter(bounds.MaxWaitWithoutReply);
                }
            }
            catch (TeacherBudgetExceededException e)
            {
                budgetStop ??= e.Message;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                await stop.CancelAsync(); // the round has failed: end the other requests now, not after their timeouts
                throw;
            }
            finally
            {
                gate.Release();
            }
        }

        var all = Task.WhenAll(Enumerable.Range(0, batches.Count).Select(RunBatch));
        try
        {
            await all;
        }
        catch (Exception caught)
        {
            await stop.CancelAsync();
            if (cancellationToken.IsCancellationRequested) throw; // shutting down: the message comes back later
            var failure = all.Exception?.InnerExceptions.FirstOrDefault() ?? caught;
            throw RoundFailed(request.Round, failure, ledger, started.Elapsed, silence.IsCancellationRequested, roundTime.IsCancellationRequested);
        }
        return Assemble(request, ledger, results, budgetStop, perRequest, "chat", null);
    }

    /// <summary>
    /// The round through the Batch API: every request of the round in one batch (at the run's samples per request),
    /// waited for up to <see cref="TeacherBatchOptions.MaxWait"/> (not the direct path's MaxWaitWithoutReply and
    /// MaxRoundTime: a batch is slow by design), its answers merged exactly like direct ones.
    /// </summary>
    private async Task<RoundShard> GenerateThroughBatchAsync(RoundShardRequest request, TeacherUsageLedger ledger, ITeacherBatchJournal? journal,
        int perRequest, IReadOnlyList<int[]> batches, CancellationToken cancellationToken)
    {
        var pieces = new List<(int Batch, int Requested, TeacherPrompt Prompt)>();
        for (var b = 0; b < batches.Count; b++)
        {
            var left = batches[b];
            for (var piece = 0; left.Sum() > 0; piece++)
            {
                var ask = SplitAllocation(left, perRequest)[0];
                left = left.Zip(ask, (l, a) => l - a).ToArray();
                var seed = unchecked(request.PromptInput.Seed * 31 + b);
                var input = request.PromptInput with { Allocation = ask, Seed = piece == 0 ? seed : unchecked(seed * 17 + piece) };
                pieces.Add((b, ask.Sum(), TeacherPromptBuilder.Build(input, request.PromptOptions, teacher.Tokenizer.Counter)));
            }
        }
        var started = System.Diagnostics.Stopwatch.StartNew();
        TeacherBatchOutcome outcome;
        try
        {
            outcome = await teacher.GenerateBatchAsync(pieces.Select(p => p.Prompt).ToList(), request.ReplyContext,
                new TeacherCallContext(request.RunId, request.Round), ledger, journal, cancellationToken);
        }
        catch (TeacherBudgetExceededException e)
        {
            return Assemble(request, ledger, [], e.Message, perRequest, "batch", null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw RoundFailed(request.Round, e, ledger, started.Elapsed, false, false);
        }

        var results = new List<(TeacherResult Result, int Requested)>[batches.Count];
        for (var b = 0; b < batches.Count; b++) results[b] = [];
        var unanswered = 0;
        for (var i = 0; i < pieces.Count; i++)
        {
            if (outcome.Results[i] is not { } result)
            {
                unanswered++;
                continue;
            }
            results[pieces[i].Batch].Add((result, pieces[i].Requested));
            if (result.Finish == TeacherFinish.Length)
                perRequest = Math.Min(perRequest, ReplyTruncation.NextSamplesPerRequest(pieces[i].Requested, result.Reply.ItemCount));
        }
        var note = unanswered == 0 ? outcome.EndedEarly : $"{outcome.EndedEarly}: {unanswered} of {pieces.Count} requests unanswered";
        if (unanswered == pieces.Count && pieces.Count > 0)
            throw new TeacherRoundFailedException(
                $"The teacher at {teacher.Connection.Endpoint} ({teacher.Connection.Deployment}) answered none of round {request.Round}'s {pieces.Count} requests: " +
                $"{note ?? $"batch {outcome.BatchId} ended {outcome.Status}"}. Nothing of the round was stored.", request.Round, ledger.FailedAttempts, null);
        return Assemble(request, ledger, results, null, perRequest, "batch", note);
    }

    /// <summary>The round's answers merged into the shard and its accounting, in batch order.</summary>
    private RoundShard Assemble(RoundShardRequest request, TeacherUsageLedger ledger, IReadOnlyList<List<(TeacherResult Result, int Requested)>?> results,
        string? budgetStop, int perRequest, string api, string? note)
    {
        var labels = request.PromptInput.Labels;
        // Merge in batch order: the same calls give the same shard whatever finished first.
        var accepted = new List<LabeledExample>();
        var seen = new HashSet<string>(request.ReplyContext.TrainingHashes, StringComparer.Ordinal);
        var rejected = new Dictionary<RejectReason, int>();
        var calls = new List<TeacherCallRecord>();
        var unusable = 0;
        int promptsFiltered = 0, repliesFiltered = 0, truncated = 0, lost = 0, asked = 0;
        string? filterReason = null;
        foreach (var (result, requested) in results.SelectMany(r => r ?? []))
        {
            asked++;
            calls.AddRange(result.Calls);
            if (result.ContentFiltered)
            {
                if (result.PromptFiltered) promptsFiltered++;
                else repliesFiltered++;
                filterReason ??= result.FilterReason;
                continue;
            }
            if (result.Finish == TeacherFinish.Length)
            {
                truncated++;
                lost += Math.Max(0, requested - result.Reply.ItemCount);
            }
            if (!result.Reply.IsValidReply) unusable++;
            foreach (var (reason, count) in result.Reply.RejectTally) rejected[reason] = rejected.GetValueOrDefault(reason) + count;
            foreach (var example in result.Reply.Accepted)
            {
                if (seen.Add(TextHash.Of(example.Text))) accepted.Add(example);
                else rejected[RejectReason.DuplicateInReply] = rejected.GetValueOrDefault(RejectReason.DuplicateInReply) + 1;
            }
        }
        // The content filter took every request: nothing of this round can be had, and asking again would be refused again.
        if (asked > 0 && promptsFiltered + repliesFiltered == asked)
            throw new TeacherRoundFailedException(
                $"The content filter of the teacher at {teacher.Connection.Endpoint} ({teacher.Connection.Deployment}) refused all {asked} request(s) of round {request.Round} " +
                $"({promptsFiltered} prompt(s) refused with code content_filter, {repliesFiltered} reply(ies) withheld with finish_reason content_filter); " +
                $"first: {filterReason}. Nothing of the round was stored. Check the deployment's content filter configuration, or the data that goes into the prompt.",
                request.Round, ledger.FailedAttempts, null);

        var shard = new Dataset(accepted);
        var stopReason = budgetStop is null ? note : note is null ? budgetStop : $"{budgetStop}; {note}";
        return new RoundShard(request.RunId, request.Round, shard, request.PromptInput.Allocation.ToArray(), shard.CountByLabel(labels),
            rejected, unusable, calls, budgetStop is null ? ShardStop.Completed : ShardStop.BudgetReached, stopReason)
        {
            Api = api,
            PromptsFiltered = promptsFiltered,
            RepliesFiltered = repliesFiltered,
            TruncatedReplies = truncated,
            LostToTruncation = lost,
            SamplesPerRequest = perRequest,
        };
    }

    private TeacherRoundFailedException RoundFailed(int round, Exception failure, TeacherUsageLedger ledger, TimeSpan elapsed, bool silent, bool overTime)
    {
        var bounds = teacher.Options;
        var failed = ledger.FailedAttempts;
        var where = $"the teacher at {teacher.Connection.Endpoint} ({teacher.Connection.Deployment})";
        var what = failure switch
        {
            TeacherConfigurationException e => $"{where} is not configured right: {e.Message}",
            TeacherRequestException e => $"{where} refused the round's request: {e.Message}",
            TeacherUnavailableException e => $"{where} could not serve round {round}: a request still failed after {e.Attempts} attempts (Teacher:MaxRetries {bounds.MaxRetries})",
            _ when overTime => $"{where} did not finish round {round} within {bounds.MaxRoundTime.TotalSeconds:0.#} s (Teacher:MaxRoundTime)",
            _ when silent => $"{where} gave no reply for {bounds.MaxWaitWithoutReply.TotalSeconds:0.#} s in round {round} (Teacher:MaxWaitWithoutReply)",
            _ => $"{where} failed in round {round}: {failure.Message}",
        };
        var attempts = failed.Count == 0 ? "" :
            $"; {failed.Count} attempt(s) failed in {elapsed.TotalSeconds:0} s ({string.Join(", ", failed.GroupBy(f => f.Cause).OrderBy(g => g.Key).Select(g => $"{CauseName(g.Key)} {g.Count()}"))}), " +
            $"last: {failed[^1].Reason.TrimEnd('.')}";
        return new TeacherRoundFailedException(what.TrimEnd('.') + attempts + ". Nothing of the round was stored.", round, failed, failure);
    }

    /// <summary>How the run status names a retry cause: <c>429</c>, <c>5xx</c>, <c>timeout</c>, <c>network</c>.</summary>
    public static string CauseName(TeacherRetryCause cause) => cause switch
    {
        TeacherRetryCause.RateLimited => "429",
        TeacherRetryCause.ServerError => "5xx",
        TeacherRetryCause.Timeout => "timeout",
        _ => "network",
    };

    /// <summary>
    /// Splits per-label counts into ceil(total / size) batches whose sizes differ by at most one and
    /// whose per-label counts sum back to the allocation. Labels are interleaved by their evenly
    /// spaced positions (k + 0.5) / count, so every batch gets a proportional mix.
    /// </summary>
    public static IReadOnlyList<int[]> SplitAllocation(IReadOnlyList<int> allocation, int size)
    {
        ArgumentNullException.ThrowIfNull(allocation);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        var total = allocation.Sum();
        if (total == 0) return [];
        var order = allocation
            .SelectMany((count, label) => Enumerable.Range(0, count).Select(k => (Label: label, Key: (k + 0.5) / count)))
            .OrderBy(x => x.Key).ThenBy(x => x.Label)
            .Select(x => x.Label)
            .ToArray();
        var sizes = ClassAllocation.RequestSizes(total, size);
        var result = new List<int[]>(sizes.Length);
        var position = 0;
        foreach (var take in sizes)
        {
            var counts = new int[allocation.Count];
            for (var i = 0; i < take; i++) counts[order[position++]]++;
            result.Add(counts);
        }
        return result;
    }
}
