using System.Security.Cryptography;
using System.Text;

namespace Pgkd.Gateway;

/// <summary>
/// Every /v1 endpoint needs the key from <c>Gateway:ApiKey</c>, sent as <c>X-Api-Key</c> or <c>Authorization: Bearer</c>.
/// Compared in constant time; a missing or wrong key is a 401 problem that says which.
/// </summary>
public sealed class ApiKeyFilter(IConfiguration configuration) : IEndpointFilter
{
    public const string Header = "X-Api-Key";
    public const string ConfigurationKey = "Gateway:ApiKey";

    private readonly byte[] _expected = Encoding.UTF8.GetBytes(configuration[ConfigurationKey] is { Length: >= 16 } key
        ? key
        : throw new InvalidOperationException(
            $"{ConfigurationKey} is not set or shorter than 16 characters: set Gateway__ApiKey (the AppHost passes its gateway-api-key parameter)."));

    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var request = context.HttpContext.Request;
        string? presented = request.Headers[Header];
        if (string.IsNullOrEmpty(presented) && request.Headers.Authorization.ToString() is { } auth
            && auth.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            presented = auth["Bearer ".Length..].Trim();

        if (string.IsNullOrEmpty(presented))
            return ValueTask.FromResult<object?>(Results.Problem(title: "API key required",
                detail: $"send the key in the {Header} header (or Authorization: Bearer)", statusCode: StatusCodes.Status401Unauthorized));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), _expected))
            return ValueTask.FromResult<object?>(Results.Problem(title: "Wrong API key",
                detail: $"the {Header} presented is not this gateway's key", statusCode: StatusCodes.Status401Unauthorized));
        return next(context);
    }
}
