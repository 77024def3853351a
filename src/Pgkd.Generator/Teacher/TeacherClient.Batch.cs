using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using OpenAI.Batch;
using OpenAI.Chat;
using OpenAI.Files;
using Pgkd.Core.Teacher;
using Polly;

namespace Pgkd.Generator.Teacher;

/// <summary>
/// Where a round's batch is remembered, so that a step that dies while the batch runs resumes polling it when the
/// message comes back instead of paying for a second batch. The generator keeps it in the run's blobs.
/// </summary>
public interface ITeacherBatchJournal
{
    Task<string?> ReadAsync(CancellationToken cancellationToken);

    Task WriteAsync(string state, CancellationToken cancellationToken);
}

/// <summary>A round's Batch API job as far as it got: one result per prompt (null: the batch ended before answering it), and why it ended early.</summary>
public sealed record TeacherBatchOutcome(IReadOnlyList<TeacherResult?> Results, string BatchId, string Status, string? EndedEarly);

public sealed partial class TeacherClient
{
    private sealed record BatchState(string BatchId, string InputFileId, string Token);

    /// <summary>
    /// Asks for every prompt of a round through the Batch API: the requests as one JSONL file uploaded to <c>/files</c>
    /// (purpose <c>batch</c>), a batch created from it (<c>completion_window</c> 24h), polled every
    /// <see cref="TeacherBatchOptions.PollInterval"/>, its output (and error) file downloaded. Each answered line goes
    /// through the same handling as a direct reply (tokens, cached tokens, cost at the batch rate, cut-off and filtered
    /// replies, parsing, one repair turn, asked directly); a line that failed for a transient cause (429, 5xx, 408) or
    /// because the deployment refused its response format is asked again directly. When the batch is not done within
    /// <see cref="TeacherBatchOptions.MaxWait"/> it is cancelled and the lines it answered so far are used.
    /// </summary>
    public async Task<TeacherBatchOutcome> GenerateBatchAsync(IReadOnlyList<TeacherPrompt> prompts, TeacherReplyContext context,
        TeacherCallContext call, TeacherUsageLedger ledger, ITeacherBatchJournal? journal = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(ledger);
        var bounds = _options.Batch;
        var mode = ResponseMode;
        var schema = TeacherReplySchema.For(context.Labels);
        ledger.EnsureCanSpend(prompts.Sum(p => p.EstimatedTokens), Price with { InputPerMillion = Price.InputPerMillion * Price.BatchMultiplier });
        var clock = Stopwatch.StartNew();

        BatchState state;
        CreateBatchOperation? operation = null;
        if (journal is not null && await journal.ReadAsync(cancellationToken) is { } stored
            && JsonSerializer.Deserialize<BatchState>(stored) is { } resumed)
        {
            state = resumed;
            _logger.LogInformation("Run {RunId} round {Round}: resuming Batch API job {BatchId}", call.RunId, call.Round, state.BatchId);
        }
        else
        {
            var jsonl = new StringBuilder();
            for (var i = 0; i < prompts.Count; i++) jsonl.Append(BatchLine(i, prompts[i], call, mode, schema)).Append('\n');
            var file = await WithRetriesAsync(ledger, ct => _files.UploadFileAsync(BinaryData.FromString(jsonl.ToString()),
                $"pgkd-{call.RunId}-round-{call.Round}.jsonl", FileUploadPurpose.Batch), cancellationToken);
            var body = new JsonObject
            {
                ["input_file_id"] = file.Value.Id,
                ["endpoint"] = BatchEndpoint,
                ["completion_window"] = "24h",
                ["metadata"] = new JsonObject { ["pgkd_run"] = call.RunId, ["pgkd_round"] = call.Round.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            };
            operation = await WithRetriesAsync(ledger, ct => _batches.CreateBatchAsync(BinaryContent.Create(BinaryData.FromString(body.ToJsonString())),
                waitUntilCompleted: false, new RequestOptions { CancellationToken = ct }), cancellationToken);
            using var created = JsonDocument.Parse(operation.GetRawResponse().Content);
            state = new BatchState(created.RootElement.GetProperty("id").GetString()!, file.Value.Id,
                Convert.ToBase64String(operation.RehydrationToken!.ToBytes().ToArray()));
            if (journal is not null) await journal.WriteAsync(JsonSerializer.Serialize(state), cancellationToken);
            _logger.LogInformation("Run {RunId} round {Round}: Batch API job {BatchId} created for {Requests} requests ({File})",
                call.RunId, call.Round, state.BatchId, prompts.Count, file.Value.Id);
        }

        // A resumed batch is found again from its rehydration token (the SDK's way back to a long-running operation).
        operation ??= await WithRetriesAsync(ledger, ct => CreateBatchOperation.RehydrateAsync(_batches,
            ContinuationToken.FromBytes(BinaryData.FromBytes(Convert.FromBase64String(state.Token))), ct), cancellationToken);

        // Poll until the batch ends or the round's bound passes; then cancel it and take what it answered.
        JsonElement batch;
        string? endedEarly = null;
        while (true)
        {
            batch = await GetBatchAsync(operation, ledger, cancellationToken);
            var status = batch.GetProperty("status").GetString();
            if (status is "completed" or "failed" or "expired" or "cancelled") break;
            if (clock.Elapsed >= bounds.MaxWait && endedEarly is null)
            {
                endedEarly = $"the Batch API did not finish round {call.Round}'s batch {state.BatchId} within {bounds.MaxWait.TotalSeconds:0.#} s " +
                             $"(Teacher:Batch:MaxWait; it was {status}); it was cancelled";
                _logger.LogWarning("Run {RunId} round {Round}: {Reason}", call.RunId, call.Round, endedEarly);
                var running = operation;
                await WithRetriesAsync(ledger, ct => running.CancelAsync(new RequestOptions { CancellationToken = ct }), cancellationToken);
            }
            await Task.Delay(bounds.PollInterval, cancellationToken);
        }
        var finalStatus = batch.GetProperty("status").GetString()!;
        if (finalStatus == "failed")
        {
            var errors = batch.TryGetProperty("errors", out var e) && e.ValueKind == JsonValueKind.Object && e.TryGetProperty("data", out var data)
                ? string.Join("; ", data.EnumerateArray().Take(3).Select(d =>
                    $"{(d.TryGetProperty("line", out var l) && l.ValueKind == JsonValueKind.Number ? $"line {l.GetInt32()}: " : "")}{d.GetProperty("message").GetString()}"))
                : "no reason given";
            throw new TeacherRequestException($"The Batch API failed round {call.Round}'s batch {state.BatchId}: {errors}", 400, null);
        }
        if (finalStatus == "expired") endedEarly ??= $"the Batch API let round {call.Round}'s batch {state.BatchId} expire (24 h window)";

        var lines = new Dictionary<int, JsonElement>();
        foreach (var fileId in new[] { "output_file_id", "error_file_id" })
            if (batch.TryGetProperty(fileId, out var id) && id.ValueKind == JsonValueKind.String)
            {
                var content = await WithRetriesAsync(ledger, ct => _files.DownloadFileAsync(id.GetString()!, ct), cancellationToken);
                foreach (var line in content.Value.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    var element = JsonDocument.Parse(line).RootElement;
                    if (element.TryGetProperty("custom_id", out var custom) && custom.GetString() is { } name
                        && name.StartsWith("request-", StringComparison.Ordinal) && int.TryParse(name["request-".Length..], out var index)
                        && index >= 0 && index < prompts.Count)
                        lines[index] = element;
                }
            }

        var elapsed = clock.Elapsed;
        var results = new TeacherResult?[prompts.Count];
        for (var i = 0; i < prompts.Count; i++)
        {
            if (!lines.TryGetValue(i, out var line)) continue; // cancelled or expired before this request ran
            results[i] = await ResultOfLineAsync(prompts[i], line, context, call, ledger, mode, schema, elapsed, cancellationToken);
        }
        return new TeacherBatchOutcome(results, state.BatchId, finalStatus, endedEarly);
    }

    /// <summary>Azure batches call <c>/chat/completions</c> on a deployment named in each line; OpenAI <c>/v1/chat/completions</c>.</summary>
    private string BatchEndpoint => Connection.Kind == TeacherKind.AzureOpenAI ? "/chat/completions" : "/v1/chat/completions";

    /// <summary>One request of the JSONL file: the same body a direct call sends.</summary>
    private string BatchLine(int index, TeacherPrompt prompt, TeacherCallContext call, TeacherResponseMode mode, JsonObject schema)
    {
        var body = new JsonObject
        {
            ["model"] = Connection.Deployment,
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = prompt.System },
                new JsonObject { ["role"] = "user", ["content"] = prompt.User }),
            ["user"] = call.RunId,
        };
        if (_options.Temperature is { } temperature) body["temperature"] = temperature;
        if (_options.MaxOutputTokens is { } max) body["max_completion_tokens"] = max;
        body["response_format"] = mode switch
        {
            TeacherResponseMode.JsonSchema => new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject { ["name"] = TeacherReplySchema.Name, ["strict"] = true, ["schema"] = schema.DeepClone() },
            },
            TeacherResponseMode.JsonObject => new JsonObject { ["type"] = "json_object" },
            _ => null,
        };
        if (body["response_format"] is null) body.Remove("response_format");
        return new JsonObject
        {
            ["custom_id"] = $"request-{index}",
            ["method"] = "POST",
            ["url"] = BatchEndpoint,
            ["body"] = body,
        }.ToJsonString();
    }

    /// <summary>A line of the output or error file as a result: answered lines like a direct reply, failed ones asked again directly or refused.</summary>
    private async Task<TeacherResult> ResultOfLineAsync(TeacherPrompt prompt, JsonElement line, TeacherReplyContext context, TeacherCallContext call,
        TeacherUsageLedger ledger, TeacherResponseMode mode, JsonObject schema, TimeSpan elapsed, CancellationToken cancellationToken)
    {
        var response = line.GetProperty("response");
        var status = response.GetProperty("status_code").GetInt32();
        var body = response.GetProperty("body");
        if (status is >= 200 and < 300)
        {
            var choice = body.GetProperty("choices")[0];
            var text = choice.GetProperty("message").TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
            var finish = choice.TryGetProperty("finish_reason", out var f) ? f.GetString() switch
            {
                "length" => TeacherFinish.Length,
                "content_filter" => TeacherFinish.ContentFilter,
                _ => TeacherFinish.Stop,
            } : TeacherFinish.Stop;
            var usage = body.TryGetProperty("usage", out var u) ? u : default;
            int Count(JsonElement e, string name) => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : 0;
            var promptTokens = Count(usage, "prompt_tokens");
            var completionTokens = Count(usage, "completion_tokens");
            var cached = usage.ValueKind == JsonValueKind.Object && usage.TryGetProperty("prompt_tokens_details", out var d) ? Count(d, "cached_tokens") : 0;
            var record = new TeacherCallRecord(call.RunId, call.Round, TeacherCallPurpose.Generate, Connection.Deployment, promptTokens, completionTokens,
                Price.Cost(promptTokens, completionTokens, cached, batch: true), elapsed, elapsed, 1, [], cached,
                Price.CachedSavings(promptTokens, cached, batch: true), mode, finish, Batch: true);
            List<ChatMessage> messages = [new SystemChatMessage(prompt.System), new UserChatMessage(prompt.User)];
            return await AfterFirstReplyAsync(prompt, context, call, ledger, messages, [], new Completion(text, record), schema, cancellationToken);
        }

        var error = TeacherError.Of(body);
        if (error.Code == "content_filter")
            return TeacherResult.Filtered(new TeacherContentFilterException(
                $"the prompt was refused by the teacher's content filter (batch line, HTTP {status}, code content_filter): {error.Message}", null));
        var refusesFormat = status is 400 or 422 && error.AboutResponseFormat && _options.ResponseFormat == TeacherResponseFormat.Auto && mode != TeacherResponseMode.Text;
        if (refusesFormat)
        {
            var lower = mode + 1;
            if (Interlocked.CompareExchange(ref _responseMode, (int)lower, (int)mode) == (int)mode)
                _logger.LogWarning("The teacher's Batch API refused response_format {Mode} (HTTP {Status}: {Reason}); asking in {Lower} from now on",
                    mode.WireName(), status, error.Message, lower.WireName());
        }
        if (refusesFormat || status is 408 or 429 or >= 500)
        {
            ledger.RecordFailedAttempt(status switch { 429 => TeacherRetryCause.RateLimited, 408 => TeacherRetryCause.Timeout, _ => TeacherRetryCause.ServerError },
                $"batch line HTTP {status}");
            _logger.LogWarning("Run {RunId} round {Round}: a batch request failed (HTTP {Status}: {Reason}); asking it directly", call.RunId, call.Round, status, error.Message);
            return await GenerateAsync(prompt, context, call, ledger, cancellationToken);
        }
        throw new TeacherRequestException($"The teacher refused a batch request (HTTP {status}): {error.Message}", status, null)
        {
            ErrorCode = error.Code,
            ServerMessage = error.Message,
        };
    }

    private async Task<JsonElement> GetBatchAsync(CreateBatchOperation operation, TeacherUsageLedger ledger, CancellationToken cancellationToken)
    {
        var result = await WithRetriesAsync(ledger, ct => operation.GetBatchAsync(new RequestOptions { CancellationToken = ct }), cancellationToken);
        using var document = JsonDocument.Parse(result.GetRawResponse().Content);
        return document.RootElement.Clone();
    }

    /// <summary>A Files or Batches call through the same retry pipeline as chat calls, its failures mapped the same way.</summary>
    private async Task<T> WithRetriesAsync<T>(TeacherUsageLedger ledger, Func<CancellationToken, Task<T>> action, CancellationToken cancellationToken)
    {
        var log = new AttemptLog(ledger, []);
        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(AttemptLogKey, log);
        try
        {
            return await _pipeline.ExecuteAsync(static async (ctx, action) => await action(ctx.CancellationToken), context, action);
        }
        catch (Exception e) when (Transient(e, cancellationToken) is { } last)
        {
            ledger.RecordFailedAttempt(last.Cause, last.Reason);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TeacherUnavailableException(
                $"The teacher's Batch API at {Connection.Endpoint} still failed after {log.Retries.Count + 1} attempts; last: {last.Reason}.",
                log.Retries.Count + 1, last.Status, e);
        }
        catch (ClientResultException e) when (e.Status is 401 or 403)
        {
            throw new TeacherConfigurationException(TeacherConnection.Setting,
                $"The teacher at {Connection.Endpoint} refused the Batch API call (HTTP {e.Status}). Fix Key in {TeacherConnection.Setting}.", e);
        }
        catch (ClientResultException e)
        {
            var error = TeacherError.Of(e.GetRawResponse());
            throw new TeacherRequestException($"The teacher's Batch API refused the call (HTTP {e.Status}): {error.Message ?? e.Message}", e.Status, e)
            {
                ErrorCode = error.Code,
                ServerMessage = error.Message ?? e.Message,
            };
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }
}
