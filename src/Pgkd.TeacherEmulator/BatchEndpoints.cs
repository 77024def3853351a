using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Pgkd.TeacherEmulator;

/// <summary>Configuration section <c>Emulator:Batch</c>.</summary>
public sealed class BatchOptions
{
    /// <summary>How long a batch stays <c>validating</c> before it runs, in milliseconds (tests of a round's wait bound set it high).</summary>
    public int StartDelayMs { get; set; }

    /// <summary>Requests of one batch answered at once.</summary>
    public int Parallelism { get; set; } = 2;
}

/// <summary>
/// The Files and Batches APIs of OpenAI and Azure OpenAI, on both routes: <c>/v1/files</c>, <c>/v1/batches</c> (OpenAI;
/// a batch's <c>endpoint</c> is <c>/v1/chat/completions</c>) and <c>/openai/files</c>, <c>/openai/batches</c> with
/// <c>api-version</c> (Azure; <c>endpoint</c> <c>/chat/completions</c>, each line's <c>body.model</c> a deployment).
/// A JSONL file is uploaded with purpose <c>batch</c>; a batch is created from it and goes <c>validating</c>,
/// <c>in_progress</c>, <c>finalizing</c>, <c>completed</c> (or <c>failed</c> when a line is invalid, <c>cancelled</c>
/// after <c>/cancel</c>). Each line is answered by this emulator's own chat completions over loopback, so faults, the
/// content filter, the output limit and the prompt cache apply as to direct calls; 2xx answers go to the output file,
/// the others to the error file, each as <c>{"id","custom_id","response":{"status_code","request_id","body"},"error"}</c>.
/// Files and batches live in the process's memory.
/// </summary>
public static class BatchEndpoints
{
    internal sealed record StoredFile(string Id, string Filename, string Purpose, byte[] Content, long CreatedAt);

    internal sealed class Batch
    {
        public required string Id { get; init; }
        public required string Endpoint { get; init; }
        public required string InputFileId { get; init; }
        public required bool Azure { get; init; }
        public required string ApiVersion { get; init; }
        public required long CreatedAt { get; init; }
        public JsonNode? Metadata { get; init; }
        public string Status = "validating";
        public long? InProgressAt, FinalizingAt, CompletedAt, FailedAt, CancellingAt, CancelledAt;
        public string? OutputFileId, ErrorFileId;
        public int Total, Completed, Failed;
        public JsonArray? Errors;
        public readonly CancellationTokenSource Cancel = new();
        public readonly Lock Gate = new();
    }

    /// <summary>One emulator's files and batches (a singleton: emulators in one process keep their own).</summary>
    internal sealed class Store(IServiceProvider services)
    {
        public IServiceProvider Services { get; } = services;
        public readonly ConcurrentDictionary<string, StoredFile> Files = new();
        public readonly ConcurrentDictionary<string, Batch> Batches = new();
    }


    private static Store M(HttpContext ctx) => ctx.RequestServices.GetRequiredService<Store>();

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static string NewId(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    public static IEndpointRouteBuilder MapBatchEndpoints(this IEndpointRouteBuilder app)
    {
        foreach (var azure in new[] { false, true })
        {
            var prefix = azure ? "/openai" : "/v1";
            app.MapPost(prefix + "/files", (Func<HttpContext, Task<IResult>>)(ctx => Guarded(ctx, azure, () => UploadAsync(ctx))));
            app.MapGet(prefix + "/files/{id}", (HttpContext ctx, string id) => Guarded(ctx, azure, () => Task.FromResult(
                M(ctx).Files.TryGetValue(id, out var f) ? Results.Json(FileObject(f)) : NotFound(azure, $"No such File object: {id}"))));
            app.MapGet(prefix + "/files/{id}/content", (HttpContext ctx, string id) => Guarded(ctx, azure, () => Task.FromResult(
                M(ctx).Files.TryGetValue(id, out var f) ? Results.Bytes(f.Content, "application/octet-stream") : NotFound(azure, $"No such File object: {id}"))));
            app.MapDelete(prefix + "/files/{id}", (HttpContext ctx, string id) => Guarded(ctx, azure, () => Task.FromResult(
                M(ctx).Files.TryRemove(id, out _) ? Results.Json(new { id, @object = "file", deleted = true }) : NotFound(azure, $"No such File object: {id}"))));
            app.MapPost(prefix + "/batches", (Func<HttpContext, Task<IResult>>)(ctx => Guarded(ctx, azure, () => CreateAsync(ctx, azure))));
            app.MapGet(prefix + "/batches", (Func<HttpContext, Task<IResult>>)(ctx => Guarded(ctx, azure, () => Task.FromResult(Results.Json(new
            {
                @object = "list",
                data = M(ctx).Batches.Values.Where(b => b.Azure == azure).OrderByDescending(b => b.CreatedAt).Select(BatchObject).ToArray(),
                has_more = false,
            })))));
            app.MapGet(prefix + "/batches/{id}", (HttpContext ctx, string id) => Guarded(ctx, azure, () => Task.FromResult(
                M(ctx).Batches.TryGetValue(id, out var b) && b.Azure == azure ? Results.Json(BatchObject(b)) : NotFound(azure, $"No such batch: {id}"))));
            app.MapPost(prefix + "/batches/{id}/cancel", (HttpContext ctx, string id) => Guarded(ctx, azure, () => Task.FromResult(CancelBatch(ctx, id, azure))));
        }
        return app;
    }

    /// <summary>The key (401) and, on the Azure route, the api-version (404), checked as for chat completions.</summary>
    private static async Task<IResult> Guarded(HttpContext ctx, bool azure, Func<Task<IResult>> handle)
    {
        var options = ctx.RequestServices.GetRequiredService<IOptions<EmulatorOptions>>().Value;
        if (!ChatCompletionsEndpoints.Authorized(ctx, options))
            return Results.Json(new { error = new { message = "Incorrect API key provided.", type = "invalid_request_error", param = (string?)null, code = "invalid_api_key" } }, statusCode: 401);
        if (azure && string.IsNullOrEmpty(ctx.Request.Query["api-version"]))
            return Results.Json(new { error = new { code = "404", message = "Resource not found: the api-version query parameter is required." } }, statusCode: 404);
        return await handle();
    }

    private static IResult BadRequest(string message, string? param = null) =>
        Results.Json(new { error = new { message, type = "invalid_request_error", param, code = (string?)null } }, statusCode: 400);

    private static IResult NotFound(bool azure, string message) =>
        Results.Json(new { error = new { message, type = "invalid_request_error", param = "id", code = azure ? "404" : null } }, statusCode: 404);

    private static async Task<IResult> UploadAsync(HttpContext ctx)
    {
        if (!ctx.Request.HasFormContentType) return BadRequest("The request must be multipart/form-data with 'file' and 'purpose'.");
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted);
        var purpose = form["purpose"].ToString();
        if (string.IsNullOrEmpty(purpose)) return BadRequest("Missing required parameter: 'purpose'.", "purpose");
        if (purpose is not ("batch" or "fine-tune" or "assistants"))
            return BadRequest($"'{purpose}' is not one of ['fine-tune', 'assistants', 'batch'] - 'purpose'", "purpose");
        if (form.Files.GetFile("file") is not { } file) return BadRequest("Missing required parameter: 'file'.", "file");
        using var buffer = new MemoryStream();
        await file.CopyToAsync(buffer, ctx.RequestAborted);
        var stored = new StoredFile(NewId("file-"), file.FileName, purpose, buffer.ToArray(), Now);
        if (purpose == "batch" && JsonlProblem(stored.Content) is { } problem) return BadRequest(problem, "file");
        M(ctx).Files[stored.Id] = stored;
        return Results.Json(FileObject(stored));
    }

    private static string? JsonlProblem(byte[] content)
    {
        var lines = Encoding.UTF8.GetString(content).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length == 0) return "The file is empty: a batch input file needs one JSON request per line.";
        for (var i = 0; i < lines.Length; i++)
        {
            try
            {
                using var _ = JsonDocument.Parse(lines[i]);
            }
            catch (JsonException e)
            {
                return $"Invalid file format for Batch API: line {i + 1} is not valid JSON ({e.Message}).";
            }
        }
        return null;
    }

    private static object FileObject(StoredFile f) => new
    {
        id = f.Id, @object = "file", bytes = f.Content.Length, created_at = f.CreatedAt, filename = f.Filename, purpose = f.Purpose,
        status = "processed", status_details = (string?)null,
    };

    private static async Task<IResult> CreateAsync(HttpContext ctx, bool azure)
    {
        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted);
        }
        catch (JsonException e)
        {
            return BadRequest($"The request body is not valid JSON: {e.Message}");
        }
        var inputFileId = (string?)body?["input_file_id"];
        var endpoint = (string?)body?["endpoint"];
        var window = (string?)body?["completion_window"];
        var expected = azure ? "/chat/completions" : "/v1/chat/completions";
        if (inputFileId is null) return BadRequest("Missing required parameter: 'input_file_id'.", "input_file_id");
        if (endpoint != expected) return BadRequest($"Invalid value for 'endpoint': '{endpoint}'. This server batches '{expected}'.", "endpoint");
        if (window != "24h") return BadRequest($"Invalid value for 'completion_window': '{window}'. Supported values are: '24h'.", "completion_window");
        if (!M(ctx).Files.TryGetValue(inputFileId, out var input)) return BadRequest($"No such File object: {inputFileId}", "input_file_id");
        if (input.Purpose != "batch") return BadRequest($"The file {inputFileId} has purpose '{input.Purpose}', not 'batch'.", "input_file_id");

        var batch = new Batch
        {
            Id = NewId("batch_"), Endpoint = endpoint, InputFileId = inputFileId, Azure = azure,
            ApiVersion = ctx.Request.Query["api-version"].ToString(), CreatedAt = Now, Metadata = body?["metadata"]?.DeepClone(),
        };
        M(ctx).Batches[batch.Id] = batch;
        // The application's services, not the request's: the request scope ends with this response, the batch runs on.
        var services = ctx.RequestServices.GetRequiredService<Store>().Services;
        _ = Task.Run(() => RunAsync(batch, input, services));
        return Results.Json(BatchObject(batch));
    }

    private static IResult CancelBatch(HttpContext ctx, string id, bool azure)
    {
        if (!M(ctx).Batches.TryGetValue(id, out var batch) || batch.Azure != azure) return NotFound(azure, $"No such batch: {id}");
        lock (batch.Gate)
        {
            if (batch.Status is "validating" or "in_progress")
            {
                batch.Status = "cancelling";
                batch.CancellingAt = Now;
                batch.Cancel.Cancel();
            }
        }
        return Results.Json(BatchObject(batch));
    }

    /// <summary>Validates every line (the whole batch fails on one bad line, as the services do), then answers them.</summary>
    private static async Task RunAsync(Batch batch, StoredFile input, IServiceProvider services)
    {
        var options = services.GetRequiredService<IOptions<EmulatorOptions>>().Value;
        try
        {
            if (options.Batch.StartDelayMs > 0) await Task.Delay(options.Batch.StartDelayMs, batch.Cancel.Token);
            var lines = Encoding.UTF8.GetString(input.Content).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var requests = new List<(string CustomId, JsonObject Body)>();
            var errors = new JsonArray();
            var ids = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < lines.Length; i++)
            {
                var line = JsonNode.Parse(lines[i]) as JsonObject;
                var customId = (string?)line?["custom_id"];
                string? problem = line is null ? "the line is not a JSON object"
                    : customId is null ? "missing 'custom_id'"
                    : !ids.Add(customId) ? $"custom_id '{customId}' is used twice; custom_id must be unique in a batch"
                    : (string?)line["method"] != "POST" ? "'method' must be 'POST'"
                    : (string?)line["url"] != batch.Endpoint ? $"'url' must be '{batch.Endpoint}' (the batch's endpoint), was '{(string?)line["url"]}'"
                    : line["body"] is not JsonObject ? "'body' must be an object"
                    : (string?)line["body"]!["model"] is not { } model ? "'body.model' is required"
                    : !options.EffectiveDeployments.Contains(model, StringComparer.OrdinalIgnoreCase)
                        ? (batch.Azure ? $"The deployment '{model}' in body.model does not exist." : $"The model '{model}' does not exist.")
                    : null;
                if (problem is not null)
                    errors.Add(new JsonObject { ["code"] = "invalid_request", ["message"] = problem, ["param"] = null, ["line"] = i + 1 });
                else
                    requests.Add((customId!, (JsonObject)line!["body"]!));
            }
            lock (batch.Gate)
            {
                batch.Total = lines.Length;
                if (errors.Count > 0)
                {
                    batch.Status = "failed";
                    batch.FailedAt = Now;
                    batch.Errors = errors;
                    return;
                }
                if (batch.Status != "validating") return;
                batch.Status = "in_progress";
                batch.InProgressAt = Now;
            }

            var address = services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()
                .Replace("://+", "://127.0.0.1", StringComparison.Ordinal).Replace("://*", "://127.0.0.1", StringComparison.Ordinal)
                .Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal).Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal);
            using var http = new HttpClient { BaseAddress = new Uri(address.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(10) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
            var results = new (string CustomId, int Status, JsonNode? Body)?[requests.Count];
            using var gate = new SemaphoreSlim(Math.Max(1, options.Batch.Parallelism));
            await Task.WhenAll(requests.Select(async (r, i) =>
            {
                await gate.WaitAsync(batch.Cancel.Token);
                try
                {
                    var model = (string)r.Body["model"]!;
                    var path = batch.Azure
                        ? $"openai/deployments/{Uri.EscapeDataString(model)}/chat/completions?api-version={Uri.EscapeDataString(batch.ApiVersion)}"
                        : "v1/chat/completions";
                    using var response = await http.PostAsync(path, new StringContent(r.Body.ToJsonString(), Encoding.UTF8, "application/json"), batch.Cancel.Token);
                    var text = await response.Content.ReadAsStringAsync(batch.Cancel.Token);
                    JsonNode? node;
                    try { node = JsonNode.Parse(text); } catch (JsonException) { node = JsonValue.Create(text); }
                    results[i] = (r.CustomId, (int)response.StatusCode, node);
                    lock (batch.Gate)
                        if ((int)response.StatusCode is >= 200 and < 300) batch.Completed++;
                        else batch.Failed++;
                }
                finally
                {
                    gate.Release();
                }
            }).Select(async t =>
            {
                try { await t; } catch (OperationCanceledException) { }
            }));

            lock (batch.Gate)
            {
                batch.Status = batch.Cancel.IsCancellationRequested ? "cancelling" : "finalizing";
                batch.FinalizingAt = batch.Cancel.IsCancellationRequested ? null : Now;
            }
            string Line((string CustomId, int Status, JsonNode? Body) r) => new JsonObject
            {
                ["id"] = NewId("batch_req_"),
                ["custom_id"] = r.CustomId,
                ["response"] = new JsonObject { ["status_code"] = r.Status, ["request_id"] = NewId("req_"), ["body"] = r.Body?.DeepClone() },
                ["error"] = null,
            }.ToJsonString();
            var done = results.Where(r => r is not null).Select(r => r!.Value).ToList();
            var output = done.Where(r => r.Status is >= 200 and < 300).Select(Line).ToList();
            var failed = done.Where(r => r.Status is < 200 or >= 300).Select(Line).ToList();
            string? Save(List<string> content, string name)
            {
                if (content.Count == 0) return null;
                var file = new StoredFile(NewId("file-"), name, "batch_output", Encoding.UTF8.GetBytes(string.Join('\n', content) + "\n"), Now);
                services.GetRequiredService<Store>().Files[file.Id] = file;
                return file.Id;
            }
            lock (batch.Gate)
            {
                batch.OutputFileId = Save(output, $"{batch.Id}_output.jsonl");
                batch.ErrorFileId = Save(failed, $"{batch.Id}_error.jsonl");
                if (batch.Cancel.IsCancellationRequested)
                {
                    batch.Status = "cancelled";
                    batch.CancelledAt = Now;
                }
                else
                {
                    batch.Status = "completed";
                    batch.CompletedAt = Now;
                }
            }
        }
        catch (OperationCanceledException)
        {
            lock (batch.Gate)
            {
                batch.Status = "cancelled";
                batch.CancelledAt = Now;
            }
        }
        catch (Exception e)
        {
            lock (batch.Gate)
            {
                batch.Status = "failed";
                batch.FailedAt = Now;
                batch.Errors = new JsonArray(new JsonObject { ["code"] = "server_error", ["message"] = e.Message, ["param"] = null, ["line"] = null });
            }
        }
    }

    private static object BatchObject(Batch b)
    {
        lock (b.Gate)
            return new
            {
                id = b.Id, @object = "batch", endpoint = b.Endpoint,
                errors = b.Errors is null ? null : new { @object = "list", data = b.Errors.DeepClone() },
                input_file_id = b.InputFileId, completion_window = "24h", status = b.Status,
                output_file_id = b.OutputFileId, error_file_id = b.ErrorFileId,
                created_at = b.CreatedAt, in_progress_at = b.InProgressAt, expires_at = b.CreatedAt + 86_400,
                finalizing_at = b.FinalizingAt, completed_at = b.CompletedAt, failed_at = b.FailedAt, expired_at = (long?)null,
                cancelling_at = b.CancellingAt, cancelled_at = b.CancelledAt,
                request_counts = new { total = b.Total, completed = b.Completed, failed = b.Failed },
                metadata = b.Metadata?.DeepClone(),
            };
    }
}
