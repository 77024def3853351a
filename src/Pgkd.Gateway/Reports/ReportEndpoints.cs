using System.Security.Cryptography;
using System.Text;
using Pgkd.Gateway.Reports;
using Pgkd.Storage;

// In the root namespace so Program.cs maps the pages with one line, like MapDefaultEndpoints.
namespace Pgkd.Gateway;

/// <summary>
/// The run report pages: <c>/runs</c> (list) and <c>/runs/{id}</c> (one run), for people in a browser. They show run
/// data, so they need the same API key as /v1: sent as a header (scripts), or entered once at <c>/login</c>, which
/// sets an HttpOnly cookie. The cookie holds an HMAC of the key, not the key itself, so a copied cookie does not
/// reveal the key for /v1. An anonymous visitor is sent to /login and sees no run data.
/// </summary>
public static class ReportEndpoints
{
    public const string CookieName = "pgkd_session";
    private const string SessionPurpose = "pgkd-report-session-v1";

    /// <summary>
    /// Every page answers with this policy: nothing may load from anywhere (no script, no remote CSS or font), inline
    /// styles only, forms post back here. It also proves the pages need no internet.
    /// </summary>
    public const string ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    public static WebApplication MapReports(this WebApplication app)
    {
        var pages = app.MapGroup("").ExcludeFromDescription().AddEndpointFilter(async (context, next) =>
        {
            var headers = context.HttpContext.Response.Headers;
            headers.ContentSecurityPolicy = ContentSecurityPolicy;
            headers.CacheControl = "no-store";
            headers["X-Content-Type-Options"] = "nosniff";
            headers["Referrer-Policy"] = "no-referrer";
            return await next(context);
        });
        pages.MapGet("/login", (string? returnUrl) => Html(ReportHtml.Login(null, SafeReturnUrl(returnUrl))));
        pages.MapPost("/login", LoginAsync);
        pages.MapPost("/logout", (HttpContext http) =>
        {
            http.Response.Cookies.Delete(CookieName, CookieOptions(http));
            return Results.Redirect("/login");
        });
        pages.MapGet("/runs", ListAsync);
        pages.MapGet("/runs/{runId:guid}", ReportAsync);
        return app;
    }

    private static async Task<IResult> LoginAsync(HttpContext http, IConfiguration configuration)
    {
        // Read the form directly: a plain HTML form, no antiforgery token (the cookie is SameSite=Strict and the
        // form only ever grants what knowing the key grants already).
        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        var returnUrl = SafeReturnUrl(form["returnUrl"]);
        var presented = form["apiKey"].ToString();
        if (!KeyMatches(presented, ExpectedKey(configuration)))
            return Html(ReportHtml.Login(presented.Length == 0 ? "Enter the API key." : "That is not this gateway's API key.", returnUrl),
                StatusCodes.Status401Unauthorized);
        http.Response.Cookies.Append(CookieName, SessionToken(ExpectedKey(configuration)), CookieOptions(http));
        return Results.Redirect(returnUrl);
    }

    private static async Task<IResult> ListAsync(HttpContext http, IConfiguration configuration, RunStore store, CancellationToken cancellationToken)
    {
        if (!IsSignedIn(http, configuration)) return ToLogin(http);
        var runs = new List<RunManifest>();
        await foreach (var id in store.ListRunIdsAsync(cancellationToken))
            if (await store.ReadManifestAsync(id, cancellationToken) is { } manifest)
                runs.Add(manifest);
        return Html(ReportHtml.RunsList(runs.OrderByDescending(r => r.CreatedAt).ToList()));
    }

    private static async Task<IResult> ReportAsync(Guid runId, HttpContext http, IConfiguration configuration, RunStore store,
        CancellationToken cancellationToken)
    {
        if (!IsSignedIn(http, configuration)) return ToLogin(http);
        var model = await RunReportModel.LoadAsync(store, runId, cancellationToken);
        return model is null
            ? Html(ReportHtml.Page("No such run", $"<h1>No such run</h1><p>Run {runId:D} does not exist. <a href=\"/runs\">All runs</a></p>"),
                StatusCodes.Status404NotFound)
            : Html(ReportHtml.RunReport(model));
    }

    /// <summary>Signed in: the session cookie, or the API key as X-Api-Key / Bearer (for curl and scripts).</summary>
    public static bool IsSignedIn(HttpContext http, IConfiguration configuration)
    {
        var expected = ExpectedKey(configuration);
        if (http.Request.Cookies[CookieName] is { Length: > 0 } cookie
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(cookie), Encoding.UTF8.GetBytes(SessionToken(expected))))
            return true;
        string? presented = http.Request.Headers[ApiKeyFilter.Header];
        if (string.IsNullOrEmpty(presented) && http.Request.Headers.Authorization.ToString() is { } auth
            && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            presented = auth["Bearer ".Length..].Trim();
        return !string.IsNullOrEmpty(presented) && KeyMatches(presented, expected);
    }

    /// <summary>Where to go after signing in: only a path on this site, so /login cannot be used to send people elsewhere.</summary>
    public static string SafeReturnUrl(string? url) =>
        url is { Length: > 0 } u && u[0] == '/' && (u.Length == 1 || (u[1] != '/' && u[1] != '\\')) && !u.Contains("://", StringComparison.Ordinal)
            ? u
            : "/runs";

    /// <summary>The cookie value for a key: HMAC-SHA256 of a fixed purpose string under the key.</summary>
    public static string SessionToken(string key) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(SessionPurpose)));

    private static bool KeyMatches(string presented, string expected) =>
        presented.Length > 0 && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected));

    private static string ExpectedKey(IConfiguration configuration) =>
        configuration[ApiKeyFilter.ConfigurationKey] is { Length: >= 16 } key
            ? key
            : throw new InvalidOperationException($"{ApiKeyFilter.ConfigurationKey} is not set or shorter than 16 characters");

    private static IResult ToLogin(HttpContext http) =>
        Results.Redirect("/login?returnUrl=" + Uri.EscapeDataString(http.Request.Path + http.Request.QueryString));

    private static CookieOptions CookieOptions(HttpContext http) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = http.Request.IsHttps,
        Path = "/",
        MaxAge = TimeSpan.FromHours(12),
    };

    private static IResult Html(string html, int status = StatusCodes.Status200OK) =>
        Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
}
