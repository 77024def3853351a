using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Pgkd.Gateway.Security;

public sealed class ApiKeyAuthenticationOptions : AuthenticationSchemeOptions
{
    /// <summary>The gateway's key (<c>Gateway:ApiKey</c>), at least 16 characters.</summary>
    public string Key { get; set; } = "";
}

/// <summary>
/// The API key, sent as <c>X-Api-Key</c> or <c>Authorization: Bearer</c>, compared in constant time. A request without
/// either is not this scheme's business (no result); a wrong key fails. The challenge is a 401 problem that says which.
/// </summary>
public sealed class ApiKeyAuthenticationHandler(IOptionsMonitor<ApiKeyAuthenticationOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<ApiKeyAuthenticationOptions>(options, logger, encoder)
{
    public const string Header = "X-Api-Key";
    private const string BearerPrefix = "Bearer ";

    /// <summary>The key the request presents, or null when it presents none.</summary>
    public static string? PresentedKey(HttpRequest request)
    {
        if (request.Headers[Header].ToString() is { Length: > 0 } header) return header;
        var authorization = request.Headers.Authorization.ToString();
        return authorization.StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase) && authorization[BearerPrefix.Length..].Trim() is { Length: > 0 } token
            ? token
            : null;
    }

    /// <summary>Whether the request carries a key at all (right or wrong): then this scheme, not the cookie, decides.</summary>
    public static bool PresentsKey(HttpRequest request) =>
        request.Headers.ContainsKey(Header) || request.Headers.Authorization.ToString().StartsWith(BearerPrefix, StringComparison.OrdinalIgnoreCase);

    public static bool KeyMatches(string presented, string expected) =>
        presented.Length > 0 && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected));

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (!PresentsKey(Request)) return Task.FromResult(AuthenticateResult.NoResult());
        var presented = PresentedKey(Request);
        if (presented is null || !KeyMatches(presented, Options.Key))
            return Task.FromResult(AuthenticateResult.Fail($"the {Header} presented is not this gateway's key"));
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, GatewayAuthentication.CallerName)], Scheme.Name);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), Scheme.Name)));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var result = await HandleAuthenticateOnceSafeAsync();
        var (title, detail) = result.Failure is { } failure
            ? ("Wrong API key", failure.Message)
            : ("API key required", $"send the key in the {Header} header (or Authorization: Bearer)");
        await RequestGuards.ProblemAsync(Context, StatusCodes.Status401Unauthorized, title, detail);
    }
}
