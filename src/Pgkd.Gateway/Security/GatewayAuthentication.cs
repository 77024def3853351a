using System.Globalization;
using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Threading.RateLimiting;
using Azure.Storage.Blobs;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace Pgkd.Gateway.Security;

/// <summary>Marks an endpoint that answers a browser with HTML: an anonymous visitor is sent to the sign-in form, not given a 401.</summary>
public sealed class HtmlPage
{
    public static readonly HtmlPage Instance = new();
    private HtmlPage() { }
}

/// <summary>Marks the sign-in form's POST: anonymous, yet every attempt counts against the failed-authentication limit.</summary>
public sealed class SignInAttempt
{
    public static readonly SignInAttempt Instance = new();
    private SignInAttempt() { }
}

/// <summary>
/// Section <c>Gateway:FailedAuthentication</c>: how many unauthenticated requests to protected endpoints (and sign-in
/// attempts) one client may make per window before it is answered 429 with Retry-After.
/// </summary>
public sealed class FailedAuthenticationLimit
{
    public const string Section = "Gateway:FailedAuthentication";
    public int PermitLimit { get; set; } = 20;
    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// One authentication mechanism for the whole gateway, from ASP.NET Core: the API key (<see cref="ApiKeyAuthenticationHandler"/>)
/// for scripts and the CLI, a session cookie for people in a browser (set by the sign-in form once the key is entered),
/// and a fallback policy under which every endpoint needs one of them unless it is marked anonymous
/// (<c>/health</c>, <c>/alive</c>, the sign-in form). A new endpoint is protected without anyone remembering to.
/// </summary>
public static class GatewayAuthentication
{
    public const string ConfigurationKey = "Gateway:ApiKey";
    public const string Scheme = "Gateway";
    public const string ApiKeyScheme = "ApiKey";
    public const string CookieScheme = CookieAuthenticationDefaults.AuthenticationScheme;
    public const string CookieName = "pgkd_session";
    public const string CallerName = "api-key-holder";
    public const string LoginPath = "/login";

    /// <summary>A session is tied to the key it was opened with: rotating the key ends every session.</summary>
    private const string KeyFingerprintClaim = "pgkd:key-fingerprint";

    public static WebApplicationBuilder AddGatewayAuthentication(this WebApplicationBuilder builder)
    {
        var key = ApiKey(builder.Configuration);
        var fingerprint = Fingerprint(key);

        builder.Services.AddAuthentication(Scheme)
            // A request that presents a key is judged by the key alone (a wrong key is never rescued by a cookie).
            .AddPolicyScheme(Scheme, "API key or session", o => o.ForwardDefaultSelector = context =>
                ApiKeyAuthenticationHandler.PresentsKey(context.Request) ? ApiKeyScheme : CookieScheme)
            .AddScheme<ApiKeyAuthenticationOptions, ApiKeyAuthenticationHandler>(ApiKeyScheme, o => o.Key = key)
            .AddCookie(CookieScheme, o =>
            {
                o.Cookie.Name = CookieName;
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Strict;
                o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                o.ExpireTimeSpan = TimeSpan.FromHours(12);
                o.SlidingExpiration = false;
                o.LoginPath = LoginPath;
                o.ReturnUrlParameter = "returnUrl";
                o.Events.OnRedirectToLogin = context =>
                {
                    // Pages send a browser to the form; everything else (the API, unknown paths) answers a problem.
                    if (context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<HtmlPage>() is not null)
                    {
                        var request = context.Request;
                        context.Response.Redirect($"{LoginPath}?returnUrl={Uri.EscapeDataString(request.PathBase + request.Path + request.QueryString)}");
                        return Task.CompletedTask;
                    }
                    return RequestGuards.ProblemAsync(context.HttpContext, StatusCodes.Status401Unauthorized, "API key required",
                        $"send the key in the {ApiKeyAuthenticationHandler.Header} header (or Authorization: Bearer)");
                };
                o.Events.OnValidatePrincipal = context =>
                {
                    if (context.Principal?.FindFirst(KeyFingerprintClaim)?.Value != fingerprint) context.RejectPrincipal();
                    return Task.CompletedTask;
                };
            });

        builder.Services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder(Scheme).RequireAuthenticatedUser().Build());

        // Session cookies are sealed with Data Protection; its key ring lives in blob storage so that every gateway
        // replica, and a restarted one, reads the cookies the others wrote.
        builder.Services.AddDataProtection().SetApplicationName("pgkd-gateway");
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(services =>
            new ConfigureOptions<KeyManagementOptions>(o => o.XmlRepository = new BlobKeyRing(services.GetRequiredService<BlobServiceClient>())));

        var limit = builder.Configuration.GetSection(FailedAuthenticationLimit.Section).Get<FailedAuthenticationLimit>() ?? new();
        if (limit.PermitLimit < 1 || limit.Window <= TimeSpan.Zero)
            throw new InvalidOperationException($"{FailedAuthenticationLimit.Section}: PermitLimit must be at least 1 and Window positive (was {limit.PermitLimit}, {limit.Window}).");
        builder.Services.AddRateLimiter(o =>
        {
            o.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(context => FailedAuthenticationPartition(context, limit));
            o.OnRejected = async (context, _) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : limit.Window;
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await RequestGuards.ProblemAsync(context.HttpContext, StatusCodes.Status429TooManyRequests, "Too many failed sign-ins",
                    $"more than {limit.PermitLimit} requests without a valid key from this client within {limit.Window.TotalSeconds:0} s " +
                    $"({FailedAuthenticationLimit.Section}); try again in {seconds} s");
            };
        });
        return builder;
    }

    /// <summary>Authentication, then the failed-authentication limit (it needs to know who is authenticated), then authorization.</summary>
    public static WebApplication UseGatewayAuthentication(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseAuthorization();
        return app;
    }

    /// <summary>Signs the browser in for 12 hours: the session carries the key's fingerprint, never the key.</summary>
    public static Task SignInAsync(HttpContext http, IConfiguration configuration) =>
        http.SignInAsync(CookieScheme, new ClaimsPrincipal(new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, CallerName), new Claim(KeyFingerprintClaim, Fingerprint(ApiKey(configuration)))], CookieScheme)),
            new AuthenticationProperties { IsPersistent = true });

    public static Task SignOutAsync(HttpContext http) => http.SignOutAsync(CookieScheme);

    public static string ApiKey(IConfiguration configuration) =>
        configuration[ConfigurationKey] is { Length: >= 16 } key
            ? key
            : throw new InvalidOperationException(
                $"{ConfigurationKey} is not set or shorter than 16 characters: set Gateway__ApiKey (the AppHost passes its gateway-api-key parameter).");

    /// <summary>HMAC-SHA256 of a fixed purpose under the key: names the key without revealing it.</summary>
    private static string Fingerprint(string key) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(key), "pgkd-session-key-v2"u8));

    /// <summary>
    /// Authenticated callers are never limited, nor are anonymous endpoints (health probes); a request without valid
    /// credentials to anything else, and every sign-in attempt, counts against its client's window.
    /// </summary>
    private static RateLimitPartition<string> FailedAuthenticationPartition(HttpContext context, FailedAuthenticationLimit limit)
    {
        if (context.User.Identity?.IsAuthenticated == true) return RateLimitPartition.GetNoLimiter("authenticated");
        var metadata = context.GetEndpoint()?.Metadata;
        if (metadata?.GetMetadata<IAllowAnonymous>() is not null && metadata.GetMetadata<SignInAttempt>() is null)
            return RateLimitPartition.GetNoLimiter("anonymous-endpoint");
        var client = context.Connection.RemoteIpAddress is { } address ? Normalize(address).ToString() : "unknown";
        return RateLimitPartition.GetFixedWindowLimiter("client:" + client, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = limit.PermitLimit,
            Window = limit.Window,
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
