using System.ClientModel;
using System.ClientModel.Primitives;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Azure.AI.OpenAI;
using Azure.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using OpenAI;
using Pgkd.TeacherTokens;
using OpenAI.Chat;
using Pgkd.Core.Teacher;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace Pgkd.Generator.Teacher;

/// <summary>The result of <see cref="TeacherClient.CheckAsync"/>: who answered, the call's figures, the price, and the response formats.</summary>
public sealed record TeacherCheck(TeacherConnection Connection, string? Model, TeacherCallRecord Call, TokenPrice Price, bool Priced,
    IReadOnlyList<(TeacherResponseMode Mode, string? Refusal)> ResponseModes, TeacherResponseMode RunsAskIn);

/// <summary>Who is asking: the run (sent as the OpenAI <c>user</c> field, which the emulator keys its no-repeat memory on) and the round.</summary>
public sealed record TeacherCallContext(string RunId, int Round);

/// <summary>
/// A parsed teacher answer and the calls it took (one, or two when the reply had to be repaired), how it ended
/// (<see cref="Finish"/>: cut off at the output limit, or withheld by the content filter), and whether the prompt
/// itself was refused by the content filter (<see cref="PromptFiltered"/>: no call succeeded, nothing to parse).
/// </summary>
public sealed record TeacherResult(TeacherReplyParseResult Reply, IReadOnlyList<TeacherCallRecord> Calls, bool Repaired, string RawReply)
{
    public TeacherFinish Finish { get; init; } = TeacherFinish.Stop;

    public bool PromptFiltered { get; init; }

    /// <summary>The filter's own words, for the log and a failed round's reason.</summary>
    public string? FilterReason { get; init; }

    /// <summary>The prompt or the reply was withheld by the content filter: nothing of this request can be used.</summary>
    public bool ContentFiltered => PromptFiltered || Finish == TeacherFinish.ContentFilter;

    /// <summary>The response mode the answer came in.</summary>
    public TeacherResponseMode ResponseMode => Calls.Count > 0 ? Calls[^1].ResponseMode : TeacherResponseMode.JsonObject;

    internal static TeacherResult Filtered(TeacherContentFilterException e) =>
        new(new TeacherReplyParseResult([], [], new Dictionary<RejectReason, int>(), null, 0), [], false, "")
        { PromptFiltered = true, FilterReason = e.Message };
}

/// <summary>
/// The teacher LLM behind one chat API: Azure OpenAI through Azure.AI.OpenAI (API key or Entra ID) or
/// any OpenAI-compatible endpoint through the OpenAI .NET client, chosen by <see cref="TeacherConnection.Kind"/>.
/// It turns a Core <see cref="TeacherPrompt"/> into a chat request (system + user, JSON reply
/// format), sends it through a Polly pipeline (a timeout per attempt inside retries of 429, 408, 5xx,
/// timeouts and network errors, with exponential backoff and jitter, honouring Retry-After), gives a
/// reply that does not parse one repair turn, records tokens, latency and cost of every call in a
/// <see cref="TeacherUsageLedger"/> whose budget it enforces, and hands replies to
/// <see cref="TeacherReplyParser"/>. The SDKs' own retries are off so that every retry goes through
/// this pipeline, which records each one by cause in the ledger and is bounded by the options.
/// </summary>
public sealed partial class TeacherClient
{
    // On the project's meter ("PgkdAspire"), which ServiceDefaults exports: tokens, latency, retries per model.
    private static readonly Meter Meter = new(Microsoft.Extensions.Hosting.Extensions.ActivitySourceName);
    private static readonly Counter<long> TokenCounter = Meter.CreateCounter<long>("pgkd.teacher.tokens", "{token}", "Tokens the teacher reported, by type (input, output).");
    private static readonly Histogram<double> LatencyHistogram = Meter.CreateHistogram<double>("pgkd.teacher.latency", "s", "Latency of teacher requests that succeeded.");
    private static readonly Counter<long> RetryCounter = Meter.CreateCounter<long>("pgkd.teacher.retries", "{retry}", "Teacher attempts that failed and were retried.");

    private readonly ChatClient _chat;
    private readonly OpenAI.Files.OpenAIFileClient _files;
    private readonly OpenAI.Batch.BatchClient _batches;
    private readonly TeacherClientOptions _options;
    private readonly TeacherPriceTable _prices;
    private readonly ILogger _logger;
    private readonly Random _jitter;
    private readonly Lock _jitterGate = new();
    private readonly ResiliencePipeline _pipeline;
    // The response mode this deployment is asked in; lowered once (json_schema -> json_object -> text) when it refuses one.
    private int _responseMode;

    public TeacherClient(TeacherConnection connection, TeacherClientOptions? options = null, ILogger<TeacherClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        Connection = connection;
        _options = options ?? new TeacherClientOptions();
        _prices = new TeacherPriceTable(_options.Prices);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _jitter = _options.JitterSeed is { } seed ? new Random(seed) : new Random();
        (_chat, _files, _batches) = CreateClients(connection, _options);
        _pipeline = BuildPipeline();
        _responseMode = (int)StartMode(_options);
    }

    /// <summary>The mode requests go out in now: the configured one, or with Auto what this deployment was found to accept.</summary>
    public TeacherResponseMode ResponseMode => (TeacherResponseMode)Volatile.Read(ref _responseMode);

    private static TeacherResponseMode StartMode(TeacherClientOptions options) => options.ResponseFormat switch
    {
        TeacherResponseFormat.JsonObject => TeacherResponseMode.JsonObject,
        TeacherResponseFormat.Text => TeacherResponseMode.Text,
        TeacherResponseFormat.JsonSchema => TeacherResponseMode.JsonSchema,
        // The older switch: JsonMode false meant "send no response_format".
        _ => options.JsonMode ? TeacherResponseMode.JsonSchema : TeacherResponseMode.Text,
    };

    public TeacherConnection Connection { get; }

    /// <summary>Section <c>Teacher</c>: retries, timeouts (the round generator reads the round bounds from here), prices, budget.</summary>
    public TeacherClientOptions Options => _options;

    public TokenPrice Price => _prices.PriceOf(Connection.Deployment);

    /// <summary>The deployment's tokenizer: prompts are fitted to their token budget, and spending checked, in its tokens.</summary>
    public TeacherTokenizer Tokenizer => TeacherTokenizer.ForModel(Connection.Deployment);

    /// <summary>The service-wide budget from <c>Teacher:Budget</c>: the limit for runs that set none of their own.</summary>
    public TeacherBudget DefaultBudget => _options.Budget;

    /// <summary>
    /// Asks the teacher for one prompt's samples and parses the reply against <paramref name="context"/>.
    /// A reply without usable JSON is answered once with a repair turn. Throws
    /// <see cref="TeacherBudgetExceededException"/> before a request the budget does not allow,
    /// <see cref="TeacherConfigurationException"/> on a wrong key or deployment,
    /// <see cref="TeacherUnavailableException"/> when retries run out.
    /// </summary>
    public async Task<TeacherResult> GenerateAsync(TeacherPrompt prompt, TeacherReplyContext context, TeacherCallContext call,
        TeacherUsageLedger ledger, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(ledger);
        List<ChatMessage> messages = [new SystemChatMessage(prompt.System), new UserChatMessage(prompt.User)];
        var calls = new List<TeacherCallRecord>();
        var schema = TeacherReplySchema.For(context.Labels);

        ledger.EnsureCanSpend(prompt.EstimatedTokens, Price);
        Completion first;
        try
        {
            first = await CompleteAsync(messages, call, TeacherCallPurpose.Generate, ledger, schema, cancellationToken);
        }
        catch (TeacherContentFilterException e)
        {
            _logger.LogWarning("Teacher content filter refused the prompt of run {RunId} round {Round}: {Reason}", call.RunId, call.Round, e.Message);
            return TeacherResult.Filtered(e);
        }
        return await AfterFirstReplyAsync(prompt, context, call, ledger, messages, calls, first, schema, cancellationToken);
    }

    /// <summary>
    /// What follows a first reply, however it came (a chat call, or a line of a Batch API output): record it, keep a
    /// cut-off or filtered reply as it is, parse the rest, and ask once more (directly) when it did not parse.
    /// </summary>
    private async Task<TeacherResult> AfterFirstReplyAsync(TeacherPrompt prompt, TeacherReplyContext context, TeacherCallContext call,
        TeacherUsageLedger ledger, List<ChatMessage> messages, List<TeacherCallRecord> calls, Completion first,
        System.Text.Json.Nodes.JsonObject schema, CancellationToken cancellationToken)
    {
        ledger.Record(first.Record);
        calls.Add(first.Record);
        if (Ended(first, context, calls, false) is { } ended) return ended;
        var parsed = TeacherReplyParser.Parse(first.Text, context);
        if (parsed.IsValidReply) return new TeacherResult(parsed, calls, false, first.Text);

        _logger.LogWarning("Teacher reply for run {RunId} round {Round} did not parse ({Error}); asking once for a repaired reply",
            call.RunId, call.Round, parsed.ReplyError);
        messages.Add(new AssistantChatMessage(first.Text));
        var repair = RepairPrompt(parsed.ReplyError!);
        messages.Add(new UserChatMessage(repair));
        ledger.EnsureCanSpend(prompt.EstimatedTokens + Tokenizer.CountTokens(first.Text) + Tokenizer.CountTokens(repair), Price);
        Completion second;
        try
        {
            second = await CompleteAsync(messages, call, TeacherCallPurpose.Repair, ledger, schema, cancellationToken);
        }
        catch (TeacherContentFilterException e)
        {
            return TeacherResult.Filtered(e) with { Calls = calls, Repaired = true, RawReply = first.Text };
        }
        ledger.Record(second.Record);
        calls.Add(second.Record);
        return Ended(second, context, calls, true)
               ?? new TeacherResult(TeacherReplyParser.Parse(second.Text, context), calls, true, second.Text);
    }

    /// <summary>
    /// A reply that did not simply stop: one cut off at the output limit keeps its complete items (a repair turn would
    /// be cut off again), one withheld by the content filter gives nothing and is not asked again. Null: it stopped.
    /// </summary>
    private TeacherResult? Ended(Completion completion, TeacherReplyContext context, List<TeacherCallRecord> calls, bool repaired)
    {
        switch (completion.Record.Finish)
        {
            case TeacherFinish.Length:
                var kept = TeacherReplyParser.ParseTruncated(completion.Text, context);
                _logger.LogWarning("Teacher reply for run {RunId} round {Round} was cut off at the output limit (finish_reason length); " +
                    "kept its {Complete} complete items", completion.Record.RunId, completion.Record.Round, kept.ItemCount);
                return new TeacherResult(kept, calls, repaired, completion.Text) { Finish = TeacherFinish.Length };
            case TeacherFinish.ContentFilter:
                _logger.LogWarning("Teacher reply for run {RunId} round {Round} was withheld by the content filter (finish_reason content_filter)",
                    completion.Record.RunId, completion.Record.Round);
                return new TeacherResult(new TeacherReplyParseResult([], [], new Dictionary<RejectReason, int>(), null, 0), calls, repaired, completion.Text)
                { Finish = TeacherFinish.ContentFilter, FilterReason = "the reply was withheld by the content filter (finish_reason content_filter)" };
            default:
                return null;
        }
    }

    /// <summary>The repair turn: the parser's complaint and the exact schema again.</summary>
    public static string RepairPrompt(string error) =>
        $"Your reply could not be used: {error}. Reply again with only one JSON object in exactly this schema, " +
        $"with the same number of examples per label as asked, and nothing before or after it: {TeacherPromptBuilder.ReplySchema}";

    /// <summary>
    /// One tiny request that proves endpoint, key and deployment: throws
    /// <see cref="TeacherConfigurationException"/> naming the setting when one is wrong.
    /// </summary>
    public async Task<TeacherCallRecord> VerifyAsync(CancellationToken cancellationToken = default)
    {
        List<ChatMessage> messages =
        [
            new SystemChatMessage("You check connectivity. Reply with JSON only."),
            new UserChatMessage("Reply with {\"samples\":[]} and nothing else."),
        ];
        var completion = await CompleteAsync(messages, new TeacherCallContext("verify", 0), TeacherCallPurpose.Verify, null,
            TeacherReplySchema.For(VerifyLabels), cancellationToken);
        return completion.Record;
    }

    private static readonly Pgkd.Core.Data.LabelSet VerifyLabels = Pgkd.Core.Data.LabelSet.FromLines("ok");

    /// <summary>One answered request: the reply's text, its record, and the model the server says answered.</summary>
    private sealed record Completion(string Text, TeacherCallRecord Record, string? Model = null);

    /// <summary>
    /// What <c>pgkd teacher check</c> reports: one small request in the mode runs would use (its latency, tokens, price
    /// and the model that answered), and which response formats the deployment accepts.
    /// </summary>
    public async Task<TeacherCheck> CheckAsync(CancellationToken cancellationToken = default)
    {
        var modes = await ProbeResponseModesAsync(cancellationToken);
        // Runs would ask in the best mode the deployment accepted (the configured one, when one is forced).
        if (_options.ResponseFormat == TeacherResponseFormat.Auto && modes.FirstOrDefault(m => m.Refusal is null) is { Refusal: null } best)
            Volatile.Write(ref _responseMode, (int)best.Mode);
        List<ChatMessage> messages =
        [
            new SystemChatMessage("You check connectivity. Reply with JSON only."),
            new UserChatMessage("Reply with {\"samples\":[]} and nothing else."),
        ];
        var completion = await CompleteAsync(messages, new TeacherCallContext("check", 0), TeacherCallPurpose.Verify, null,
            TeacherReplySchema.For(VerifyLabels), cancellationToken);
        return new TeacherCheck(Connection, completion.Model, completion.Record, Price, _prices.HasPrice(Connection.Deployment), modes, ResponseMode);
    }

    /// <summary>
    /// Sends the chat in the deployment's current response mode. When the server refuses that mode (a 400 or 422 about
    /// <c>response_format</c>: older Azure API versions and many OpenAI-compatible servers refuse <c>json_schema</c>, some
    /// also <c>json_object</c>) and <see cref="TeacherClientOptions.ResponseFormat"/> is Auto, the client lowers the mode for
    /// good (json_schema, then json_object, then text) and asks again at once; a forced mode fails with the server's words.
    /// </summary>
    private async Task<Completion> CompleteAsync(List<ChatMessage> messages, TeacherCallContext call, TeacherCallPurpose purpose,
        TeacherUsageLedger? ledger, System.Text.Json.Nodes.JsonObject schema, CancellationToken cancellationToken)
    {
        while (true)
        {
            var mode = ResponseMode;
            try
            {
                return await CompleteInModeAsync(messages, call, purpose, ledger, mode, schema, cancellationToken);
            }
            catch (TeacherRequestException e) when (e.RefusesResponseFormat && _options.ResponseFormat == TeacherResponseFormat.Auto
                                                    && mode != TeacherResponseMode.Text)
            {
                var lower = mode + 1;
                if (Interlocked.CompareExchange(ref _responseMode, (int)lower, (int)mode) == (int)mode)
                    _logger.LogWarning("The teacher at {Endpoint} ({Deployment}) refused response_format {Mode} (HTTP {Status}: {Reason}); " +
                        "asking in {Lower} from now on", Connection.Endpoint, Connection.Deployment, mode.WireName(), e.Status, e.ServerMessage, lower.WireName());
            }
        }
    }

    /// <summary>
    /// Asks the teacher in each response mode once, with a tiny request, and says which it accepts (null) or how it
    /// refused: what <c>pgkd teacher check</c> shows. Does not change the mode the client uses.
    /// </summary>
    public async Task<IReadOnlyList<(TeacherResponseMode Mode, string? Refusal)>> ProbeResponseModesAsync(CancellationToken cancellationToken = default)
    {
        var results = new List<(TeacherResponseMode, string?)>();
        foreach (var mode in Enum.GetValues<TeacherResponseMode>())
        {
            List<ChatMessage> messages =
            [
                new SystemChatMessage("You check connectivity. Reply with JSON only."),
                new UserChatMessage("Reply with {\"samples\":[]} and nothing else."),
            ];
            try
            {
                await CompleteInModeAsync(messages, new TeacherCallContext("check", 0), TeacherCallPurpose.Verify, null, mode,
                    TeacherReplySchema.For(VerifyLabels), cancellationToken);
                results.Add((mode, null));
            }
            catch (TeacherRequestException e)
            {
                results.Add((mode, $"HTTP {e.Status}: {e.ServerMessage}"));
            }
        }
        return results;
    }

    private ChatCompletionOptions OptionsFor(TeacherCallContext call, TeacherResponseMode mode, System.Text.Json.Nodes.JsonObject schema)
    {
        var chatOptions = new ChatCompletionOptions
        {
            EndUserId = call.RunId,
            Temperature = _options.Temperature,
            MaxOutputTokenCount = _options.MaxOutputTokens,
        };
        chatOptions.ResponseFormat = mode switch
        {
            TeacherResponseMode.JsonSchema => ChatResponseFormat.CreateJsonSchemaFormat(TeacherReplySchema.Name,
                BinaryData.FromString(schema.ToJsonString()), jsonSchemaIsStrict: true),
            TeacherResponseMode.JsonObject => ChatResponseFormat.CreateJsonObjectFormat(),
            _ => null, // text: no response_format at all, which every server accepts
        };
        return chatOptions;
    }

    private async Task<Completion> CompleteInModeAsync(List<ChatMessage> messages, TeacherCallContext call, TeacherCallPurpose purpose,
        TeacherUsageLedger? ledger, TeacherResponseMode mode, System.Text.Json.Nodes.JsonObject schema, CancellationToken cancellationToken)
    {
        using var activity = Microsoft.Extensions.Hosting.Extensions.ActivitySource.StartActivity("teacher.chat");
        activity?.SetTag("pgkd.run_id", call.RunId);
        activity?.SetTag("pgkd.round", call.Round);
        activity?.SetTag("gen_ai.request.model", Connection.Deployment);
        activity?.SetTag("pgkd.teacher.purpose", purpose.ToString());
        activity?.SetTag("pgkd.teacher.response_mode", mode.WireName());
        var chatOptions = OptionsFor(call, mode, schema);

        var log = new AttemptLog(ledger, []);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(AttemptLogKey, log);
        var total = Stopwatch.StartNew();
        try
        {
            var (completion, latency) = await _pipeline.ExecuteAsync(static async (ctx, state) =>
            {
                var watch = Stopwatch.StartNew();
                ClientResult<ChatCompletion> result = await state.Chat.CompleteChatAsync(state.Messages, state.Options, ctx.CancellationToken);
                return (result.Value, watch.Elapsed);
            }, context, (Chat: _chat, Messages: messages, Options: chatOptions));

            var attempts = log.Retries.Count + 1;
            var text = completion.Content.Count > 0 ? string.Concat(completion.Content.Select(p => p.Text)) : "";
            var promptTokens = completion.Usage?.InputTokenCount ?? 0;
            var completionTokens = completion.Usage?.OutputTokenCount ?? 0;
            var cachedTokens = completion.Usage?.InputTokenDetails?.CachedTokenCount ?? 0;
            var finish = completion.FinishReason switch
            {
                ChatFinishReason.Length => TeacherFinish.Length,
                ChatFinishReason.ContentFilter => TeacherFinish.ContentFilter,
                _ => TeacherFinish.Stop,
            };
            var record = new TeacherCallRecord(call.RunId, call.Round, purpose, Connection.Deployment, promptTokens, completionTokens,
                Price.Cost(promptTokens, completionTokens, cachedTokens, batch: false), latency, total.Elapsed, attempts, log.Retries,
                cachedTokens, Price.CachedSavings(promptTokens, cachedTokens, batch: false), mode, finish);
            activity?.SetTag("gen_ai.usage.input_tokens", promptTokens);
            activity?.SetTag("gen_ai.usage.output_tokens", completionTokens);
            activity?.SetTag("gen_ai.usage.cached_input_tokens", cachedTokens);
            activity?.SetTag("gen_ai.response.finish_reasons", completion.FinishReason.ToString());
            activity?.SetTag("pgkd.teacher.attempts", attempts);
            var model = new KeyValuePair<string, object?>("gen_ai.request.model", Connection.Deployment);
            TokenCounter.Add(promptTokens, model, new("gen_ai.token.type", "input"));
            TokenCounter.Add(completionTokens, model, new("gen_ai.token.type", "output"));
            if (cachedTokens > 0) TokenCounter.Add(cachedTokens, model, new("gen_ai.token.type", "cached_input"));
            LatencyHistogram.Record(latency.TotalSeconds, model);
            return new Completion(text, record, completion.Model);
        }
        catch (Exception e) when (Transient(e, cancellationToken) is { } last)
        {
            // The pipeline gave up on a transient failure; OnRetry never saw this last attempt, so it is recorded here.
            ledger?.RecordFailedAttempt(last.Cause, last.Reason);
            cancellationToken.ThrowIfCancellationRequested();
            var attempts = log.Retries.Count + 1;
            throw new TeacherUnavailableException(
                $"The teacher at {Connection.Endpoint} ({Connection.Deployment}) still failed after {attempts} attempts; last: {last.Reason}.",
                attempts, last.Status, e);
        }
        catch (ClientResultException e) when (e.Status is 401 or 403)
        {
            throw new TeacherConfigurationException(TeacherConnection.Setting,
                Connection.UsesEntraId
                    ? $"The teacher at {Connection.Endpoint} refused the Entra ID token (HTTP {e.Status}). Give this identity the 'Cognitive Services OpenAI User' role, or set Key in {TeacherConnection.Setting}."
                    : $"The teacher at {Connection.Endpoint} rejected the API key (HTTP {e.Status}). Fix Key in {TeacherConnection.Setting}.", e);
        }
        catch (ClientResultException e) when (e.Status == 404)
        {
            throw new TeacherConfigurationException(TeacherConnection.Setting,
                $"The teacher at {Connection.Endpoint} has no deployment or model '{Connection.Deployment}' (HTTP 404). " +
                $"Fix Deployment in {TeacherConnection.Setting} (or Endpoint, if it points to the wrong resource or lacks /v1).", e);
        }
        catch (ClientResultException e)
        {
            var error = TeacherError.Of(e.GetRawResponse());
            if (error.Code == "content_filter")
                throw new TeacherContentFilterException(
                    $"the prompt was refused by the teacher's content filter (HTTP {e.Status}, code content_filter): {error.Message ?? e.Message}", e);
            throw new TeacherRequestException($"The teacher refused the request (HTTP {e.Status}): {error.Message ?? e.Message}", e.Status, e)
            {
                ErrorCode = error.Code,
                ServerMessage = error.Message ?? e.Message,
                RefusesResponseFormat = e.Status is 400 or 422 && error.AboutResponseFormat,
            };
        }
        catch (AuthenticationFailedException e)
        {
            throw new TeacherConfigurationException(TeacherConnection.Setting,
                $"No Entra ID credential for the teacher ({e.Message}). Sign in (az login, managed identity) or set Key in {TeacherConnection.Setting}.", e);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    /// <summary>One request's retries, carried through the shared pipeline in its <see cref="ResilienceContext"/>.</summary>
    private sealed record AttemptLog(TeacherUsageLedger? Ledger, List<TeacherRetry> Retries);

    private static readonly ResiliencePropertyKey<AttemptLog> AttemptLogKey = new("pgkd.teacher.attempt_log");

    /// <summary>A failure worth another attempt, named as the run status counts it.</summary>
    private sealed record TransientFailure(TeacherRetryCause Cause, string Reason, int? Status, TimeSpan? RetryAfter);

    /// <summary>
    /// Retries of transient failures around a timeout per attempt, built once per client (a request's own state travels
    /// in its context). Polly's exponential backoff with jitter decides each wait, drawing from
    /// <see cref="TeacherClientOptions.JitterSeed"/>, unless the failed attempt carried a Retry-After.
    /// </summary>
    private ResiliencePipeline BuildPipeline()
    {
        var builder = new ResiliencePipelineBuilder();
        try
        {
            // Polly refuses MaxRetryAttempts 0: no retries is no retry strategy.
            if (_options.MaxRetries > 0)
                builder.AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = _options.MaxRetries,
                    BackoffType = DelayBackoffType.Exponential,
                    UseJitter = true,
                    Delay = _options.BaseDelay,
                    MaxDelay = _options.MaxDelay,
                    Randomizer = () => { lock (_jitterGate) return _jitter.NextDouble(); },
                    ShouldHandle = args => ValueTask.FromResult(Transient(args.Outcome.Exception, args.Context.CancellationToken) is not null),
                    // Polly does not apply MaxDelay to a generated delay: MaxRetryAfter caps it.
                    DelayGenerator = args => ValueTask.FromResult(
                        Transient(args.Outcome.Exception, args.Context.CancellationToken)?.RetryAfter is { } retryAfter
                            ? Min(retryAfter, _options.MaxRetryAfter) : (TimeSpan?)null),
                    OnRetry = args =>
                    {
                        Record(args.Context.Properties.GetValue(AttemptLogKey, null!),
                            Transient(args.Outcome.Exception, args.Context.CancellationToken)!, args.AttemptNumber + 1, args.RetryDelay);
                        return ValueTask.CompletedTask;
                    },
                });
            return builder.AddTimeout(_options.RequestTimeout).Build();
        }
        catch (ValidationException e)
        {
            throw new TeacherConfigurationException(TeacherClientOptions.Section,
                $"Section {TeacherClientOptions.Section} has a value the retry pipeline refuses (RequestTimeout is its Timeout; MaxRetries, " +
                $"BaseDelay and MaxDelay its retry's MaxRetryAttempts, Delay and MaxDelay): {e.Message}", e);
        }
    }

    /// <summary>A failed attempt about to be retried: in the run's ledger, the call's retries, the retry counter and the log.</summary>
    private void Record(AttemptLog log, TransientFailure failure, int attempt, TimeSpan delay)
    {
        log.Ledger?.RecordFailedAttempt(failure.Cause, failure.Reason);
        log.Retries.Add(new TeacherRetry(attempt, failure.Reason, failure.Status, delay, failure.RetryAfter is not null, failure.Cause));
        RetryCounter.Add(1, new KeyValuePair<string, object?>("gen_ai.request.model", Connection.Deployment),
            new KeyValuePair<string, object?>("pgkd.teacher.retry_cause", failure.Cause.ToString()));
        _logger.LogWarning("Teacher attempt {Attempt} failed ({Reason}); retrying in {Delay} ms", attempt, failure.Reason, (int)delay.TotalMilliseconds);
    }

    /// <summary>
    /// The failure as a retry cause, or null where another attempt cannot help: a refusal (401, 403, 404, other 4xx),
    /// a missing credential, the caller's own cancellation.
    /// </summary>
    private TransientFailure? Transient(Exception? error, CancellationToken caller) => error switch
    {
        ClientResultException { Status: 429 or 408 or >= 500 or 0 } e => new TransientFailure(
            e.Status switch { 429 => TeacherRetryCause.RateLimited, 408 => TeacherRetryCause.Timeout, 0 => TeacherRetryCause.Network, _ => TeacherRetryCause.ServerError },
            e.Status == 0 ? "network error: " + e.Message : $"HTTP {e.Status}",
            e.Status == 0 ? null : e.Status,
            RetryAfterOf(e.GetRawResponse())),
        TimeoutRejectedException => AttemptTimedOut(),
        // A cancellation the caller did not ask for is the SDK's own network timeout (set above RequestTimeout).
        OperationCanceledException when !caller.IsCancellationRequested => AttemptTimedOut(),
        HttpRequestException e => new TransientFailure(TeacherRetryCause.Network, "network error: " + e.Message, null, null),
        _ => null,
    };

    private TransientFailure AttemptTimedOut() =>
        new(TeacherRetryCause.Timeout, $"timeout after {_options.RequestTimeout.TotalSeconds:0.###} s (Teacher:RequestTimeout)", null, null);

    /// <summary><c>retry-after-ms</c> (OpenAI and Azure send it) first, then <c>Retry-After</c> as seconds or an HTTP date.</summary>
    internal static TimeSpan? RetryAfterOf(PipelineResponse? response)
    {
        if (response is null) return null;
        if (response.Headers.TryGetValue("retry-after-ms", out var ms)
            && double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out var millis) && millis >= 0)
            return TimeSpan.FromMilliseconds(millis);
        if (response.Headers.TryGetValue("Retry-After", out var value) && value is not null)
        {
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
                return TimeSpan.FromSeconds(seconds);
            if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var when))
                return when > DateTimeOffset.UtcNow ? when - DateTimeOffset.UtcNow : TimeSpan.Zero;
        }
        return null;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>The chat client, and the Files and Batches clients of the same account (the Batch API path).</summary>
    private static (ChatClient, OpenAI.Files.OpenAIFileClient, OpenAI.Batch.BatchClient) CreateClients(TeacherConnection connection, TeacherClientOptions options)
    {
        // The SDKs' retries are off (the pipeline retries and records); their own timeout sits above the pipeline's.
        var networkTimeout = options.RequestTimeout + TimeSpan.FromSeconds(30);
        switch (connection.Kind)
        {
            case TeacherKind.AzureOpenAI:
            {
                var azureOptions = new AzureOpenAIClientOptions { RetryPolicy = new ClientRetryPolicy(0), NetworkTimeout = networkTimeout };
                var client = connection.UsesEntraId
                    ? new AzureOpenAIClient(connection.Endpoint, new DefaultAzureCredential(), azureOptions)
                    : new AzureOpenAIClient(connection.Endpoint, new ApiKeyCredential(connection.Key!), azureOptions);
                return (client.GetChatClient(connection.Deployment), client.GetOpenAIFileClient(), client.GetBatchClient());
            }
            default:
            {
                var openAiOptions = new OpenAIClientOptions { Endpoint = connection.Endpoint, RetryPolicy = new ClientRetryPolicy(0), NetworkTimeout = networkTimeout };
                var client = new OpenAIClient(new ApiKeyCredential(connection.Key!), openAiOptions);
                return (client.GetChatClient(connection.Deployment), client.GetOpenAIFileClient(), client.GetBatchClient());
            }
        }
    }
}
