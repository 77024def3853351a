using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http.Features;

namespace Pgkd.Gateway;

/// <summary>
/// The /v1 API's front guard, after authentication (an unauthenticated caller learns nothing about what the API
/// accepts) and before any endpoint sees a request: the body's JSON content
/// type (415), a size limit enforced by Kestrel (413), valid UTF-8 (400, with the byte offset) and well-formed JSON
/// (400, with line and byte). Binding errors the endpoints would otherwise answer with an empty 400 (a wrong type,
/// an unknown field) become problems that name the field. Every answer is application/problem+json.
/// </summary>
public static class RequestGuards
{
    /// <summary>Bytes of a <c>POST /v1/runs</c> body: datasets come inline.</summary>
    public const long MaxRunBodyBytes = 32L * 1024 * 1024;

    /// <summary>Bytes of any other /v1 body (<c>/v1/classify</c>: 64 texts of up to 10,000 characters, escaped).</summary>
    public const long MaxBodyBytes = 4L * 1024 * 1024;

    /// <summary>Binding failures throw, so <see cref="UseRequestGuards"/> can answer them as problems naming the field.</summary>
    public static IServiceCollection AddRequestGuards(this IServiceCollection services) =>
        services.Configure<RouteHandlerOptions>(options => options.ThrowOnBadRequest = true);

    public static IApplicationBuilder UseRequestGuards(this IApplicationBuilder app) =>
        app.UseWhen(context => context.Request.Path.StartsWithSegments("/v1"), v1 => v1.Use(GuardAsync));

    private static async Task GuardAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        var hasBody = request.ContentLength > 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count > 0);
        if (hasBody && !HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method))
        {
            if (!IsJson(request.ContentType))
            {
                await ProblemAsync(context, StatusCodes.Status415UnsupportedMediaType, "Unsupported content type",
                    $"send the body as application/json in UTF-8; got '{(string.IsNullOrEmpty(request.ContentType) ? "no Content-Type" : request.ContentType)}'");
                return;
            }

            var limit = request.Path.StartsWithSegments("/v1/runs") ? MaxRunBodyBytes : MaxBodyBytes;
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = limit;
            if (request.ContentLength > limit)
            {
                await TooLargeAsync(context, limit, request.ContentLength.Value);
                return;
            }

            byte[] body;
            try
            {
                body = await ReadAtMostAsync(request.Body, limit, context.RequestAborted);
            }
            catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                await TooLargeAsync(context, limit, null);
                return;
            }
            if (body.Length > limit)
            {
                await TooLargeAsync(context, limit, null);
                return;
            }
            if (InvalidUtf8At(body) is { } offset)
            {
                await ProblemAsync(context, StatusCodes.Status400BadRequest, "Invalid UTF-8",
                    $"the body is not valid UTF-8 at byte {offset}");
                return;
            }
            if (JsonError(body) is { } jsonError)
            {
                await ProblemAsync(context, StatusCodes.Status400BadRequest, "Invalid JSON", jsonError);
                return;
            }
            request.Body = new MemoryStream(body, writable: false);
            request.ContentLength = body.Length;
        }

        try
        {
            await next(context);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            // A body that is JSON but not the endpoint's shape, a missing body, an unparseable route or query value.
            var detail = e.InnerException is JsonException json ? $"{e.Message} {Describe(json)}" : e.Message;
            await ProblemAsync(context, e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request body too large" : "Bad request", detail);
        }
    }

    private static bool IsJson(string? contentType)
    {
        if (string.IsNullOrEmpty(contentType)) return false;
        if (!Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)) return false;
        var type = media.MediaType.Value ?? "";
        var json = type.Equals("application/json", StringComparison.OrdinalIgnoreCase)
                   || (type.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && type.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
        var charset = media.Charset.Value;
        return json && (string.IsNullOrEmpty(charset) || charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase)
                                                      || charset.Equals("utf8", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The body, or <paramref name="limit"/> + 1 bytes of it when it is longer.</summary>
    private static async Task<byte[]> ReadAtMostAsync(Stream body, long limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                buffer.Write(chunk, 0, read);
                if (buffer.Length > limit) break;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        return buffer.ToArray();
    }

    private static long? InvalidUtf8At(byte[] body)
    {
        if (Utf8.IsValid(body)) return null;
        var chars = ArrayPool<char>.Shared.Rent(body.Length + 1);
        try
        {
            Utf8.ToUtf16(body, chars, out var bytesRead, out _, replaceInvalidSequences: false);
            return bytesRead;
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    private static string? JsonError(byte[] body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 64 });
        try
        {
            while (reader.Read()) { }
            return reader.BytesConsumed == 0 ? "the body is empty or only whitespace; send a JSON object" : null;
        }
        catch (JsonException e)
        {
            return Describe(e);
        }
    }

    /// <summary>System.Text.Json's message with 1-based line and byte, and the JSON path where it has one.</summary>
    private static string Describe(JsonException e)
    {
        var message = e.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal) is var p and >= 0 ? p : message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut >= 0) message = message[..cut];
        var where = new StringBuilder();
        if (!string.IsNullOrEmpty(e.Path)) where.Append($" at {e.Path}");
        if (e.LineNumber is { } line) where.Append($" (line {line + 1}, byte {e.BytePositionInLine + 1})");
        return message.TrimEnd() + where;
    }

    private static Task TooLargeAsync(HttpContext context, long limit, long? sent) =>
        ProblemAsync(context, StatusCodes.Status413PayloadTooLarge, "Request body too large",
            sent is { } bytes ? $"the body has {bytes} bytes; at most {limit} bytes" : $"the body is larger than {limit} bytes");

    /// <summary>
    /// An application/problem+json answer written from middleware, before any endpoint (the guards here, and the
    /// authentication handlers' challenges and the failed-sign-in limit in Security/).
    /// </summary>
    public static async Task ProblemAsync(HttpContext context, int status, string title, string detail)
    {
        // Drain nothing more: with the connection's body unread, Kestrel closes it after the answer when it must.
        context.Response.StatusCode = status;
        await Results.Problem(title: title, detail: detail, statusCode: status).ExecuteAsync(context);
    }
}
