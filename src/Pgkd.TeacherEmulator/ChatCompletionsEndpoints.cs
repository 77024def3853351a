using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Pgkd.Core.Teacher;
using Pgkd.TeacherTokens;

namespace Pgkd.TeacherEmulator;

/// <summary>
/// The Chat Completions protocol on both routes real clients use:
/// <list type="bullet">
/// <item>OpenAI: <c>POST /v1/chat/completions</c>, model in the body, <c>Authorization: Bearer KEY</c>
/// (also what Ollama and vLLM serve, so OpenAI-compatible clients work);</item>
/// <item>Azure OpenAI: <c>POST /openai/deployments/{deployment}/chat/completions?api-version=...</c>,
/// <c>api-key: KEY</c> (or a bearer token).</item>
/// </list>
/// Checks happen in the real services' order: key (401), deployment or model (404), body (400),
/// then injected faults, then the answer. Replies carry <c>usage</c> with token counts estimated as
/// the deployment's real tokenizer (<see cref="TeacherTokenizer"/>: o200k_base for the emulator's own deployment name)
/// plus the chat format's tokens per turn (<see cref="ChatTokens"/>), the way OpenAI counts them. Streaming is not emulated (400).
/// </summary>
public static class ChatCompletionsEndpoints
{
    public const string RunIdHeader = "X-Pgkd-Run-Id";

    /// <summary>Registers the emulator's options, pool, engine and fault injector. Fails fast on a missing key or pool.</summary>
    public static TBuilder AddTeacherEmulator<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var options = new EmulatorOptions();
        builder.Configuration.GetSection(EmulatorOptions.Section).Bind(options);
        if (string.IsNullOrWhiteSpace(options.ApiKey))
            throw new InvalidOperationException(
                "Emulator:ApiKey is not set. Set it (environment Emulator__ApiKey) to the key clients must send; " +
                "the AppHost passes its secret parameter teacher-key.");
        if (options.Policy.Validate() is { Count: > 0 } policyProblems)
            throw new InvalidOperationException("Invalid emulator policy: " + string.Join("; ", policyProblems));
        var pool = TeacherPool.Load(options);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(pool);
        var engine = new TeacherEngine(pool, options);
        builder.Services.AddSingleton(engine);
        builder.Services.AddHostedService<PoolWarmUp>();
        builder.Services.AddSingleton(sp => new RunPools(engine, options, sp.GetRequiredService<ILogger<RunPools>>(),
            sp.GetService<Azure.Storage.Blobs.BlobServiceClient>()));
        builder.Services.AddSingleton(new FaultInjector(options.Faults, options.Seed));
        builder.Services.AddSingleton<EmulatorStats>();
        builder.Services.AddSingleton<PromptCache>();
        builder.Services.AddSingleton<BatchEndpoints.Store>();
        return builder;
    }

    public static IEndpointRouteBuilder MapTeacherEmulator(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", (Func<HttpContext, Task<IResult>>)(ctx => HandleAsync(ctx, null)));
        app.MapPost("/openai/deployments/{deployment}/chat/completions", (HttpContext ctx, string deployment) => HandleAsync(ctx, deployment));
        app.MapGet("/v1/models", (HttpContext ctx) =>
        {
            var options = ctx.RequestServices.GetRequiredService<IOptions<EmulatorOptions>>().Value;
            if (!Authorized(ctx, options)) return Results.Json(OpenAiError("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), statusCode: 401);
            return Results.Json(new { @object = "list", data = options.EffectiveDeployments.Select(d => new { id = d, @object = "model", owned_by = "pgkd-emulator" }) });
        });
        app.MapGet("/emulator/stats", (EmulatorStats stats) => Results.Json(stats.Snapshot()));
        // Per run (the id the generator sends as `user`): requests and pool texts handed out, from the run's own engine.
        app.MapGet("/emulator/runs/{runId}", async (string runId, RunPools pools, CancellationToken cancellationToken) =>
        {
            var (requests, handedOut) = (await pools.EngineForAsync(runId, cancellationToken)).RunCounts(runId);
            return Results.Json(new { runId, requests, poolTextsHandedOut = handedOut });
        });
        app.MapBatchEndpoints();
        return app;
    }

    private static async Task<IResult> HandleAsync(HttpContext ctx, string? deployment)
    {
        var services = ctx.RequestServices;
        var options = services.GetRequiredService<IOptions<EmulatorOptions>>().Value;
        var stats = services.GetRequiredService<EmulatorStats>();
        var azure = deployment is not null;
        stats.Request();

        if (options.Faults.LatencyMs > 0) await Task.Delay(options.Faults.LatencyMs, ctx.RequestAborted);

        if (!Authorized(ctx, options))
        {
            stats.Unauthorize();
            return azure
                ? Results.Json(AzureError("401", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."), statusCode: 401)
                : Results.Json(OpenAiError("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"), statusCode: 401);
        }
        if (azure && string.IsNullOrEmpty(ctx.Request.Query["api-version"]))
            return Results.Json(AzureError("404", "Resource not found: the api-version query parameter is required."), statusCode: 404);

        JsonDocument body;
        try
        {
            body = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted);
        }
        catch (JsonException e)
        {
            return BadRequest(azure, $"The request body is not valid JSON: {e.Message}");
        }
        using (body)
        {
            var root = body.RootElement;
            if (root.ValueKind != JsonValueKind.Object) return BadRequest(azure, "The request body must be a JSON object.");
            var model = deployment ?? (root.TryGetProperty("model", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null);
            if (string.IsNullOrWhiteSpace(model))
                return BadRequest(azure, "you must provide a model parameter");
            if (!options.EffectiveDeployments.Contains(model, StringComparer.OrdinalIgnoreCase))
            {
                stats.NotFoundOne();
                return azure
                    ? Results.Json(AzureError("DeploymentNotFound", $"The API deployment for this resource does not exist ('{model}'). Known deployments: {string.Join(", ", options.EffectiveDeployments)}."), statusCode: 404)
                    : Results.Json(OpenAiError($"The model `{model}` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found"), statusCode: 404);
            }
            if (root.TryGetProperty("stream", out var stream) && stream.ValueKind == JsonValueKind.True)
                return BadRequest(azure, "The emulator does not stream: send stream=false.");
            if (!TryReadMessages(root, out var messages, out var problem)) return BadRequest(azure, problem!);
            // response_format is checked before anything runs, as the services do: an invalid schema never reaches the model.
            var format = StructuredOutputs.Read(root, out var formatProblem);
            if (format is null)
            {
                stats.RefuseFormat();
                return ResponseFormatError(formatProblem!);
            }
            if (azure && format.Format == ReplyFormat.JsonSchema && ApiVersionBefore(ctx.Request.Query["api-version"].ToString(), "2024-08-01"))
            {
                stats.RefuseFormat();
                return Results.Json(AzureError("BadRequest",
                    "response_format value as json_schema is enabled only for api versions 2024-08-01-preview and later"), statusCode: 400);
            }
            if (!options.EffectiveResponseFormats.Contains(format.WireName, StringComparer.OrdinalIgnoreCase))
            {
                stats.RefuseFormat();
                return ResponseFormatError($"Invalid parameter: 'response_format' of type '{format.WireName}' is not supported by this server (emulated; it takes {string.Join(", ", options.EffectiveResponseFormats)}).");
            }
            var maxTokens = MaxTokensOf(root, options);

            // The run id: header first (any client can add one), else the OpenAI "user" field.
            var runId = ctx.Request.Headers[RunIdHeader].FirstOrDefault() is { Length: > 0 } header ? header
                : root.TryGetProperty("user", out var u) && u.ValueKind == JsonValueKind.String && u.GetString() is { Length: > 0 } user ? user
                : "default";

            var fault = services.GetRequiredService<FaultInjector>().Next();
            stats.Injected(fault);
            switch (fault)
            {
                case InjectedFault.TooManyRequests:
                    var ms = Math.Max(0, options.Faults.RetryAfterMs);
                    ctx.Response.Headers["Retry-After"] = ((ms + 999) / 1000).ToString(CultureInfo.InvariantCulture);
                    ctx.Response.Headers["retry-after-ms"] = ms.ToString(CultureInfo.InvariantCulture);
                    return Results.Json(azure
                        ? AzureError("429", "Requests to the ChatCompletions_Create Operation have exceeded the rate limit of your deployment (emulated).")
                        : OpenAiError("Rate limit reached (emulated).", "requests", "rate_limit_exceeded"), statusCode: 429);
                case InjectedFault.ServerError:
                    return Results.Json(azure
                        ? AzureError("InternalServerError", "The server had an error while processing your request (emulated).")
                        : OpenAiError("The server had an error while processing your request (emulated).", "server_error", null), statusCode: 500);
                case InjectedFault.Hang:
                    await Task.Delay(options.Faults.HangMs, ctx.RequestAborted);
                    break;
                case InjectedFault.PromptFiltered:
                    return Results.Json(PromptFilteredError(), statusCode: 400);
            }

            var engine = await services.GetRequiredService<RunPools>().EngineForAsync(runId, ctx.RequestAborted);
            var reply = Reply(engine, messages, runId, fault, format);
            var content = reply.Content;
            var tokenizer = TeacherTokenizer.ForModel(model);
            var promptTokens = ChatTokens.Prompt(tokenizer.Counter, messages.Select(x => x.Content));
            var completionTokens = tokenizer.CountTokens(content);
            var finish = "stop";
            if (fault == InjectedFault.ReplyFiltered)
            {
                // Written, billed, then withheld: Azure sends no content and says why per category.
                finish = "content_filter";
                content = null;
            }
            else if (maxTokens is { } limit && completionTokens > limit)
            {
                finish = "length";
                content = content[..Math.Min(content.Length, limit * 4)];
                completionTokens = limit;
                stats.Truncate();
            }
            var cachedTokens = options.PromptCaching ? services.GetRequiredService<PromptCache>().CachedTokens(model, messages, promptTokens) : 0;
            stats.Cached(cachedTokens);
            stats.Complete();
            ctx.Response.Headers["x-pgkd-emulator-samples"] = reply.Samples.ToString(CultureInfo.InvariantCulture);
            object choice = fault == InjectedFault.ReplyFiltered
                ? new
                {
                    index = 0,
                    message = new { role = "assistant", content, refusal = (string?)null },
                    logprobs = (object?)null,
                    finish_reason = finish,
                    content_filter_results = FilterResults(),
                }
                : new
                {
                    index = 0,
                    message = new { role = "assistant", content, refusal = (string?)null },
                    logprobs = (object?)null,
                    finish_reason = finish,
                };
            return Results.Json(new
            {
                id = "chatcmpl-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12)),
                @object = "chat.completion",
                created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                model,
                system_fingerprint = "pgkd-teacher-emulator",
                choices = new[] { choice },
                usage = new
                {
                    prompt_tokens = promptTokens,
                    completion_tokens = completionTokens,
                    total_tokens = promptTokens + completionTokens,
                    prompt_tokens_details = new { cached_tokens = cachedTokens, audio_tokens = 0 },
                },
            });
        }
    }

    /// <summary>
    /// The reply's content in the requested format. A json_schema of the samples shape gets the engine's samples under
    /// the schema's own property name, labels kept inside the schema's enum; any other schema gets a small conforming
    /// instance; text and json_object get the engine's JSON as before.
    /// </summary>
    private static (string Content, int Samples) Reply(TeacherEngine engine, List<ChatTurn> messages, string runId, InjectedFault fault,
        ResponseFormatRequest format)
    {
        var withheld = fault is InjectedFault.Malformed or InjectedFault.ReplyFiltered; // no pool text is handed out
        if (format.Format != ReplyFormat.JsonSchema)
        {
            var plain = engine.Answer(messages, runId, withheld);
            return (plain.Content, plain.Samples.Count);
        }
        if (format.SamplesShape() is not { } shape)
            return (StructuredOutputs.Instance(format.Schema!.Value)?.ToJsonString() ?? "{}", 0);
        var answer = engine.Answer(messages, runId, withheld, shape.LabelEnum);
        if (shape.Property == "samples" || answer.Malformed) return (answer.Content, answer.Samples.Count);
        var node = System.Text.Json.Nodes.JsonNode.Parse(answer.Content)!["samples"]!.DeepClone();
        return (new System.Text.Json.Nodes.JsonObject { [shape.Property] = node }.ToJsonString(ReplyJson), answer.Samples.Count);
    }

    private static readonly JsonSerializerOptions ReplyJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The smaller of the request's <c>max_completion_tokens</c> (or the older <c>max_tokens</c>) and the model's limit; null: none.</summary>
    private static int? MaxTokensOf(JsonElement root, EmulatorOptions options)
    {
        int? requested = null;
        foreach (var name in new[] { "max_completion_tokens", "max_tokens" })
            if (root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n > 0)
            {
                requested = n;
                break;
            }
        var model = options.MaxOutputTokens > 0 ? options.MaxOutputTokens : (int?)null;
        return requested is { } r && model is { } m ? Math.Min(r, m) : requested ?? model;
    }

    /// <summary>Azure api-versions are dates (2024-10-21, 2024-08-01-preview): compares the date part.</summary>
    private static bool ApiVersionBefore(string version, string date) =>
        version.Length >= 10 && string.CompareOrdinal(version[..10], date) < 0;

    private static IResult ResponseFormatError(string message) =>
        Results.Json(new { error = new { message, type = "invalid_request_error", param = "response_format", code = (string?)null } }, statusCode: 400);

    private static object FilterResults() => new
    {
        hate = new { filtered = false, severity = "safe" },
        self_harm = new { filtered = false, severity = "safe" },
        sexual = new { filtered = false, severity = "safe" },
        violence = new { filtered = true, severity = "medium" },
    };

    /// <summary>Azure OpenAI's answer to a prompt its content filter refuses (the same on both routes).</summary>
    private static object PromptFilteredError() => new
    {
        error = new
        {
            message = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. " +
                      "Please modify your prompt and retry. (emulated)",
            type = (string?)null,
            param = "prompt",
            code = "content_filter",
            status = 400,
            innererror = new { code = "ResponsibleAIPolicyViolation", content_filter_result = FilterResults() },
        },
    };

    /// <summary>Constant-time comparison of the <c>api-key</c> header or the bearer token with the configured key.</summary>
    internal static bool Authorized(HttpContext ctx, EmulatorOptions options)
    {
        var presented = ctx.Request.Headers["api-key"].FirstOrDefault();
        if (string.IsNullOrEmpty(presented))
        {
            var auth = ctx.Request.Headers.Authorization.FirstOrDefault();
            if (auth is not null && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) presented = auth[7..].Trim();
        }
        if (string.IsNullOrEmpty(presented) || string.IsNullOrEmpty(options.ApiKey)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(options.ApiKey));
    }

    private static bool TryReadMessages(JsonElement root, out List<ChatTurn> messages, out string? problem)
    {
        messages = [];
        problem = null;
        if (!root.TryGetProperty("messages", out var array) || array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
        {
            problem = "'messages' must be a non-empty array.";
            return false;
        }
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
            {
                problem = "each message needs a string 'role'.";
                return false;
            }
            var content = new StringBuilder();
            if (item.TryGetProperty("content", out var c))
            {
                if (c.ValueKind == JsonValueKind.String) content.Append(c.GetString());
                else if (c.ValueKind == JsonValueKind.Array)
                    foreach (var part in c.EnumerateArray())
                        if (part.ValueKind == JsonValueKind.Object && part.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                            content.Append(t.GetString());
            }
            messages.Add(new ChatTurn(role.GetString()!, content.ToString()));
        }
        return true;
    }

    private static IResult BadRequest(bool azure, string message) =>
        Results.Json(azure ? AzureError("BadRequest", message) : OpenAiError(message, "invalid_request_error", null), statusCode: 400);

    private static object AzureError(string code, string message) => new { error = new { code, message } };

    private static object OpenAiError(string message, string type, string? code) =>
        new { error = new { message, type, param = (string?)null, code } };
}
