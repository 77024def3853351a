using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Gateway.Security;

namespace Pgkd.Gateway.Tests;

/// <summary>
/// Every endpoint the gateway maps, read from its own <see cref="EndpointDataSource"/>, refuses a caller without
/// credentials and a caller with a wrong key, except the short allow-list below. An endpoint added without thinking
/// about authentication is protected by the fallback policy; one marked anonymous without being added here fails.
/// </summary>
public sealed class GatewayAuthenticationTests(DefaultGatewayHost host, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<DefaultGatewayHost>
{
    /// <summary>
    /// The only endpoints a caller without the key may reach: probes, the sign-in form, and the API reference's own
    /// script and icon (Scalar marks them anonymous so its page can load; they are the library's files, no data).
    /// </summary>
    private static readonly HashSet<string> Anonymous =
    [
        "GET /health", "GET /alive", "GET /login", "POST /login", "POST /logout",
        "GET /scalar/scalar.js", "GET /scalar/scalar.aspnetcore.js", "GET /scalar/favicon.svg",
    ];

    private readonly GatewayHost _host = host;

    public static IEnumerable<(string Method, string Path, bool HtmlPage)> MappedEndpoints(IServiceProvider services)
    {
        foreach (var endpoint in services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            var methods = endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? [];
            var html = endpoint.Metadata.GetMetadata<HtmlPage>() is not null;
            foreach (var method in methods.Count == 0 ? ["GET"] : methods)
                yield return (method, Concrete(endpoint.RoutePattern), html);
        }
    }

    /// <summary>A path the pattern matches: each parameter filled with a value its constraints accept.</summary>
    private static string Concrete(RoutePattern pattern)
    {
        var segments = pattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
        {
            RoutePatternLiteralPart literal => literal.Content,
            RoutePatternSeparatorPart separator => separator.Content,
            RoutePatternParameterPart parameter => ValueFor(parameter),
            _ => throw new InvalidOperationException($"unexpected route part in {pattern.RawText}"),
        })));
        return "/" + string.Join('/', segments);
    }

    private static string ValueFor(RoutePatternParameterPart parameter)
    {
        var constraints = parameter.ParameterPolicies.Select(p => p.Content ?? "").ToList();
        if (constraints.Contains("guid")) return Guid.NewGuid().ToString("D");
        if (constraints.Any(c => c is "int" or "long")) return "1";
        return parameter.Name switch { "documentName" => "v1", _ => "x" };
    }

    [Fact]
    public void The_gateway_maps_the_endpoints_this_test_expects_to_see()
    {
        // A positive control: the enumeration reaches the real route table (API, pages, probes, documents).
        var endpoints = MappedEndpoints(_host.Services).Select(e => $"{e.Method} {e.Path}").ToList();
        Assert.Contains("POST /v1/classify", endpoints);
        Assert.Contains("POST /api/diagnostics/ping", endpoints);
        Assert.Contains(endpoints, e => e.StartsWith("GET /runs/", StringComparison.Ordinal));
        Assert.Contains("GET /health", endpoints);
        Assert.True(endpoints.Count >= 15, string.Join(", ", endpoints));
    }

    [Fact]
    public async Task Every_endpoint_refuses_a_caller_without_credentials_or_with_a_wrong_key()
    {
        using var client = _host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var failures = new List<string>();
        var checkedCount = 0;
        foreach (var (method, path, html) in MappedEndpoints(_host.Services))
        {
            var name = $"{method} {path}";
            if (Anonymous.Contains(name)) continue;
            checkedCount++;

            using (var anonymous = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)))
            {
                if (html)
                {
                    if (anonymous.StatusCode != HttpStatusCode.Redirect || anonymous.Headers.Location?.OriginalString.StartsWith("/login?returnUrl=", StringComparison.Ordinal) != true)
                        failures.Add($"{name} without credentials: {(int)anonymous.StatusCode} {anonymous.Headers.Location}, not the sign-in redirect");
                }
                else if (anonymous.StatusCode != HttpStatusCode.Unauthorized || anonymous.Content.Headers.ContentType?.MediaType != "application/problem+json")
                    failures.Add($"{name} without credentials: {(int)anonymous.StatusCode} {anonymous.Content.Headers.ContentType}, not a 401 problem");
            }

            foreach (var header in new[] { "X-Api-Key", "Authorization" })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (header == "X-Api-Key") request.Headers.Add("X-Api-Key", "not-this-gateways-key-at-all");
                else request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not-this-gateways-key-at-all");
                using var wrong = await client.SendAsync(request);
                var body = await wrong.Content.ReadAsStringAsync();
                if (wrong.StatusCode != HttpStatusCode.Unauthorized || !body.Contains("Wrong API key", StringComparison.Ordinal))
                    failures.Add($"{name} with a wrong key in {header}: {(int)wrong.StatusCode} {body[..Math.Min(body.Length, 200)]}");
            }
        }
        output.WriteLine($"{checkedCount} protected method/route pairs checked three ways; {Anonymous.Count} allowed anonymously");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public async Task The_allow_list_names_only_endpoints_that_exist_and_answer_without_a_key()
    {
        var mapped = MappedEndpoints(_host.Services).Select(e => $"{e.Method} {e.Path}").ToHashSet();
        using var client = _host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        foreach (var name in Anonymous)
        {
            Assert.Contains(name, mapped);
            var (method, path) = (name.Split(' ')[0], name.Split(' ')[1]);
            using var request = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST") request.Content = new FormUrlEncodedContent(new Dictionary<string, string>());
            using var response = await client.SendAsync(request);
            Assert.True(response.StatusCode != HttpStatusCode.Unauthorized || path == "/login", $"{name}: {(int)response.StatusCode}");
        }
    }

    [Fact]
    public async Task A_path_nobody_mapped_is_refused_too()
    {
        using var client = _host.CreateClient();
        using var response = await client.GetAsync("/v2/secret-thing");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Theory]
    [InlineData("X-Api-Key")]
    [InlineData("Authorization")]
    public async Task The_right_key_in_either_header_is_accepted(string header)
    {
        using var client = _host.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json");
        if (header == "X-Api-Key") request.Headers.Add("X-Api-Key", GatewayHost.Key);
        else request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", GatewayHost.Key);
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task The_Prometheus_scrape_needs_the_key_and_carries_the_serving_metrics()
    {
        using var client = _host.CreateClient();
        using (var anonymous = await client.GetAsync("/metrics")) Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);

        Pgkd.Student.Serving.ServingMetrics.Request("scrape-test", "ok", 3);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Add("X-Api-Key", GatewayHost.Key);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("pgkd_serving_requests", body);
        Assert.Contains("scrape-test", body);
    }

    [Fact]
    public async Task A_session_opened_at_the_sign_in_form_authenticates_and_a_wrong_key_beside_it_does_not()
    {
        using var client = _host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var cookie = await SignInAsync(client, GatewayHost.Key);
        Assert.DoesNotContain(GatewayHost.Key, cookie);

        using var withCookie = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json");
        withCookie.Headers.Add("Cookie", cookie);
        using (var ok = await client.SendAsync(withCookie)) Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        // A request that presents a key is judged by the key alone.
        using var both = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json");
        both.Headers.Add("Cookie", cookie);
        both.Headers.Add("X-Api-Key", "not-this-gateways-key-at-all");
        using (var refused = await client.SendAsync(both)) Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);

        // The raw key is not a session.
        using var forged = new HttpRequestMessage(HttpMethod.Get, "/runs");
        forged.Headers.Add("Cookie", $"{GatewayAuthentication.CookieName}={GatewayHost.Key}");
        using (var toLogin = await client.SendAsync(forged)) Assert.Equal(HttpStatusCode.Redirect, toLogin.StatusCode);
    }

    [Fact]
    public async Task Rotating_the_key_ends_every_session_opened_with_the_old_one()
    {
        var sealing = new EphemeralDataProtectionProvider(); // both gateways read each other's cookies, as replicas do
        await using var before = new GatewayHost(GatewayHost.Key, dataProtection: sealing);
        await using var after = new GatewayHost("the-rotated-key-0123456789", dataProtection: sealing);
        var options = new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false };
        var cookie = await SignInAsync(before.CreateClient(options), GatewayHost.Key);

        foreach (var (host, expected) in new[] { (before, HttpStatusCode.OK), (after, HttpStatusCode.Unauthorized) })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json");
            request.Headers.Add("Cookie", cookie);
            using var response = await host.CreateClient(options).SendAsync(request);
            Assert.Equal(expected, response.StatusCode);
        }
    }

    [Fact]
    public async Task A_burst_of_wrong_keys_is_answered_429_with_Retry_After_while_valid_callers_go_on()
    {
        await using var host = new GatewayHost(GatewayHost.Key, failedAuthenticationPermits: 5, failedAuthenticationWindow: TimeSpan.FromHours(1));
        using var client = host.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });

        var codes = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
            request.Headers.Add("X-Api-Key", $"guess-number-{i}-0123456789");
            using var response = await client.SendAsync(request);
            codes.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.True(response.Headers.RetryAfter?.Delta > TimeSpan.Zero, $"Retry-After: {response.Headers.RetryAfter}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                Assert.Contains("Gateway:FailedAuthentication", await response.Content.ReadAsStringAsync());
            }
        }
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.Unauthorized, 5), .. Enumerable.Repeat(HttpStatusCode.TooManyRequests, 3)], codes);

        // Guessing at the sign-in form is limited the same way.
        using (var form = await client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string> { ["apiKey"] = "guess" })))
            Assert.Equal(HttpStatusCode.TooManyRequests, form.StatusCode);

        // From the same client: the right key, and the probes, are not limited.
        for (var i = 0; i < 10; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/openapi/v1.json");
            request.Headers.Add("X-Api-Key", GatewayHost.Key);
            using var ok = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }
        using (var alive = await client.GetAsync("/alive")) Assert.Equal(HttpStatusCode.OK, alive.StatusCode);
    }

    private static async Task<string> SignInAsync(HttpClient client, string key)
    {
        using var login = await client.PostAsync("/login", new FormUrlEncodedContent(
            new Dictionary<string, string> { ["apiKey"] = key, ["returnUrl"] = "/runs" }));
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        var setCookie = Assert.Single(login.Headers.GetValues("Set-Cookie"), c => c.StartsWith(GatewayAuthentication.CookieName + "=", StringComparison.Ordinal));
        return setCookie.Split(';')[0];
    }
}
