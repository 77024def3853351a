using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Polly;
using Polly.Retry;

namespace Pgkd.Cli;

/// <summary>Where the gateway is and the key to use: options first, then PGKD_GATEWAY / PGKD_API_KEY, then the local defaults.</summary>
public sealed record GatewaySettings(Uri BaseAddress, string ApiKey)
{
    public const string DefaultUrl = "http://localhost:5080";
    /// <summary>The key of a local `./build.sh run` (AppHost/appsettings.json, Parameters:gateway-api-key).</summary>
    public const string DefaultApiKey = "pgkd-local-dev-key";
    public const string GatewayVariable = "PGKD_GATEWAY";
    public const string ApiKeyVariable = "PGKD_API_KEY";

    public static GatewaySettings Resolve(CliArguments args, Func<string, string?> environment)
    {
        var url = args.Option("gateway") ?? NonEmpty(environment(GatewayVariable)) ?? DefaultUrl;
        var key = args.Option("api-key") ?? NonEmpty(environment(ApiKeyVariable)) ?? DefaultApiKey;
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new CliException(ExitCodes.Usage, $"the gateway URL \"{url}\" is not an http(s) URL (from --gateway or {GatewayVariable})");
        return new GatewaySettings(uri, key);
    }

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();
}

/// <summary>
/// The gateway's HTTP API as the CLI needs it. Every failure becomes a <see cref="CliException"/> whose message says
/// what went wrong and what to do, with the exit code for its kind (unreachable, key, rejected, not found).
/// </summary>
public sealed class GatewayClient(HttpClient http, GatewaySettings settings)
{
    public GatewaySettings Settings { get; } = settings;

    public static GatewayClient Create(GatewaySettings settings, HttpMessageHandler? handler = null)
    {
        var http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        http.BaseAddress = settings.BaseAddress;
        http.Timeout = TimeSpan.FromMinutes(5); // a model download can be ~90 MB
        http.DefaultRequestHeaders.Add("X-Api-Key", settings.ApiKey);
        http.DefaultRequestHeaders.UserAgent.ParseAdd("pgkd-cli/0.1");
        return new GatewayClient(http, settings);
    }

    public async Task<JsonNode> GetJsonAsync(string path, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, path), cancellationToken);
        return await ReadJsonAsync(response, cancellationToken);
    }

    public async Task<JsonNode> PostJsonAsync(string path, JsonNode body, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) }, cancellationToken);
        return await ReadJsonAsync(response, cancellationToken);
    }

    /// <summary>The header that makes a retried POST safe: the gateway answers a repeated key with what the first request made.</summary>
    public const string IdempotencyKeyHeader = "Idempotency-Key";

    /// <summary>Attempts of an idempotent POST after the first, when the network failed or the gateway was briefly away (502-504).</summary>
    public int IdempotentRetries { get; init; } = 4;

    /// <summary>The first wait between attempts; it doubles (with jitter) each time.</summary>
    public TimeSpan IdempotentRetryDelay { get; init; } = TimeSpan.FromSeconds(0.5);

    /// <summary>
    /// A POST that may be sent again: every attempt carries <paramref name="idempotencyKey"/>, so a request that reached the
    /// gateway but whose answer was lost (connection reset, timeout) is not carried out twice. Only network failures and
    /// 502/503/504 are retried; any other answer is final.
    /// </summary>
    public async Task<JsonNode> PostJsonIdempotentAsync(string path, JsonNode body, string idempotencyKey, CancellationToken cancellationToken)
    {
        var content = body.ToJsonString();
        var pipeline = new ResiliencePipelineBuilder<HttpResponseMessage>()
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = Math.Max(1, IdempotentRetries),
                Delay = IdempotentRetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TaskCanceledException>(_ => !cancellationToken.IsCancellationRequested) // the client's timeout, not Ctrl+C
                    .HandleResult(r => r.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return default;
                },
            })
            .Build();
        // The pipeline only retries; SendAsync below turns the last failure into the CLI's message and exit code.
        using var response = await SendAsync(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(content, System.Text.Encoding.UTF8, "application/json") };
            request.Headers.Add(IdempotencyKeyHeader, idempotencyKey);
            return request;
        }, cancellationToken, HttpCompletionOption.ResponseContentRead, pipeline);
        return await ReadJsonAsync(response, cancellationToken);
    }

    /// <summary>Streams a download into <paramref name="target"/> (through a .part file, so a broken download leaves no half file).</summary>
    public async Task<long> DownloadAsync(string path, string target, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(new HttpRequestMessage(HttpMethod.Get, path), cancellationToken, HttpCompletionOption.ResponseHeadersRead);
        var partial = target + ".part";
        await using (var file = File.Create(partial))
            await response.Content.CopyToAsync(file, cancellationToken);
        File.Move(partial, target, overwrite: true);
        return new FileInfo(target).Length;
    }

    private Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead) =>
        SendAsync(() => request, cancellationToken, completion, null);

    private async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> newRequest, CancellationToken cancellationToken,
        HttpCompletionOption completion, ResiliencePipeline<HttpResponseMessage>? retries)
    {
        HttpResponseMessage response;
        HttpRequestMessage request = null!;
        try
        {
            response = retries is null
                ? await http.SendAsync(request = newRequest(), completion, cancellationToken)
                : await retries.ExecuteAsync(async ct => await http.SendAsync(request = newRequest(), completion, ct), cancellationToken);
        }
        catch (HttpRequestException e)
        {
            var why = e.InnerException is SocketException s ? s.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => "connection refused: nothing listens there",
                SocketError.HostNotFound or SocketError.NoData => "unknown host",
                _ => s.Message,
            } : e.Message;
            throw new CliException(ExitCodes.Unreachable, $"cannot reach the gateway at {Settings.BaseAddress} ({why}). "
                + $"Is it running (./build.sh run)? Point pgkd at it with --gateway URL or {GatewaySettings.GatewayVariable}.");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unreachable, $"the gateway at {Settings.BaseAddress} did not answer within {http.Timeout.TotalSeconds:F0} s");
        }
        if (response.IsSuccessStatusCode) return response;

        using (response)
        {
            var (title, detail, problems) = await ReadProblemAsync(response, cancellationToken);
            var what = $"{request.Method} {request.RequestUri}";
            switch (response.StatusCode)
            {
                case HttpStatusCode.Unauthorized:
                    throw new CliException(ExitCodes.Unauthorized, $"the gateway refused the API key: {title ?? "401"}{(detail is null ? "" : $" ({detail})")}. "
                        + $"Pass the gateway's key with --api-key KEY or {GatewaySettings.ApiKeyVariable}.");
                case HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnprocessableEntity:
                    throw new CliException(ExitCodes.Rejected, $"the gateway rejected the request: {title ?? response.StatusCode.ToString()}",
                        problems.Count > 0 ? problems : detail is null ? [] : detail.Split('\n'));
                case HttpStatusCode.NotFound or HttpStatusCode.Conflict:
                    throw new CliException(ExitCodes.NotFound, $"{title ?? "not found"}: {detail ?? what}");
                default:
                    throw new CliException(ExitCodes.GatewayError, $"{what} answered {(int)response.StatusCode} {response.ReasonPhrase}: {title} {detail}".TrimEnd());
            }
        }
    }

    /// <summary>An RFC 7807 problem body (title, detail, and the gateway's "problems" list), whatever can be read of it.</summary>
    private static async Task<(string? Title, string? Detail, IReadOnlyList<string> Problems)> ReadProblemAsync(
        HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (JsonNode.Parse(text) is not JsonObject body) return (null, null, []);
            var problems = body["problems"] is JsonArray list ? list.Select(p => p?.ToString() ?? "").ToList() : [];
            return ((string?)body["title"], (string?)body["detail"], problems);
        }
        catch (JsonException)
        {
            return (null, null, []);
        }
    }

    private async Task<JsonNode> ReadJsonAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return JsonNode.Parse(await response.Content.ReadAsStringAsync(cancellationToken))
                   ?? throw new CliException(ExitCodes.GatewayError, $"{response.RequestMessage?.RequestUri} answered an empty body");
        }
        catch (JsonException e)
        {
            throw new CliException(ExitCodes.GatewayError,
                $"{response.RequestMessage?.RequestUri} did not answer JSON ({e.Message}); is {Settings.BaseAddress} a PGKD gateway?");
        }
    }
}
