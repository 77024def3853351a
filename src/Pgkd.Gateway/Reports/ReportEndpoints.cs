using System.Text;
using Microsoft.AspNetCore.Authorization;
using Pgkd.Gateway.Reports;
using Pgkd.Gateway.Security;
using Pgkd.Storage;

// In the root namespace so Program.cs maps the pages with one line, like MapDefaultEndpoints.
namespace Pgkd.Gateway;

/// <summary>
/// The run report pages: <c>/runs</c> (list) and <c>/runs/{id}</c> (one run), for people in a browser. They show run
/// data, so the gateway's fallback policy (<see cref="GatewayAuthentication"/>) asks for the API key: sent as a header
/// (scripts), or entered once at <c>/login</c>, which opens a session cookie (sealed by Data Protection; it holds a
/// fingerprint of the key, never the key). An anonymous visitor is sent to /login and sees no run data.
/// </summary>
public static class ReportEndpoints
{
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
        pages.MapGet(GatewayAuthentication.LoginPath, (string? returnUrl) => Html(ReportHtml.Login(null, SafeReturnUrl(returnUrl))))
            .AllowAnonymous();
        pages.MapPost(GatewayAuthentication.LoginPath, LoginAsync).AllowAnonymous().WithMetadata(SignInAttempt.Instance);
        pages.MapPost("/logout", async (HttpContext http) =>
        {
            await GatewayAuthentication.SignOutAsync(http);
            return Results.Redirect(GatewayAuthentication.LoginPath);
        }).AllowAnonymous();
        pages.MapGet("/runs", ListAsync).WithMetadata(HtmlPage.Instance);
        pages.MapGet("/runs/{runId:guid}", ReportAsync).WithMetadata(HtmlPage.Instance);
        return app;
    }

    private static async Task<IResult> LoginAsync(HttpContext http, IConfiguration configuration)
    {
        // Read the form directly: a plain HTML form, no antiforgery token (the cookie is SameSite=Strict and the
        // form only ever grants what knowing the key grants already). Attempts count against the failed-sign-in limit.
        var form = await http.Request.ReadFormAsync(http.RequestAborted);
        var returnUrl = SafeReturnUrl(form["returnUrl"]);
        var presented = form["apiKey"].ToString();
        if (!ApiKeyAuthenticationHandler.KeyMatches(presented, GatewayAuthentication.ApiKey(configuration)))
            return Html(ReportHtml.Login(presented.Length == 0 ? "Enter the API key." : "That is not this gateway's API key.", returnUrl),
                StatusCodes.Status401Unauthorized);
        await GatewayAuthentication.SignInAsync(http, configuration);
        return Results.Redirect(returnUrl);
    }

    private static async Task<IResult> ListAsync(RunStore store, CancellationToken cancellationToken)
    {
        var runs = new List<RunManifest>();
        await foreach (var id in store.ListRunIdsAsync(cancellationToken))
            if (await store.ReadManifestAsync(id, cancellationToken) is { } manifest)
                runs.Add(manifest);
        return Html(ReportHtml.RunsList(runs.OrderByDescending(r => r.CreatedAt).ToList()));
    }

    private static async Task<IResult> ReportAsync(Guid runId, RunStore store, CancellationToken cancellationToken)
    {
        var model = await RunReportModel.LoadAsync(store, runId, cancellationToken);
        return model is null
            ? Html(ReportHtml.Page("No such run", $"<h1>No such run</h1><p>Run {runId:D} does not exist. <a href=\"/runs\">All runs</a></p>"),
                StatusCodes.Status404NotFound)
            : Html(ReportHtml.RunReport(model));
    }

    /// <summary>Where to go after signing in: only a path on this site, so /login cannot be used to send people elsewhere.</summary>
    public static string SafeReturnUrl(string? url) =>
        url is { Length: > 0 } u && u[0] == '/' && (u.Length == 1 || (u[1] != '/' && u[1] != '\\')) && !u.Contains("://", StringComparison.Ordinal)
            ? u
            : "/runs";

    private static IResult Html(string html, int status = StatusCodes.Status200OK) =>
        Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
}
