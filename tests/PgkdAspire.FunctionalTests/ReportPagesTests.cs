using System.Net;
using System.Text.Json.Nodes;

namespace PgkdAspire.FunctionalTests;

/// <summary>The report pages and model downloads of the real gateway, over plain HTTP: who may see what.</summary>
[Collection(DistillationCollection.Name)]
public sealed class ReportPagesTests(DistillationRunFixture run)
{
    private HttpClient Anonymous() =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = run.Gateway.BaseAddress };

    /// <summary>Strings that only appear once run data is shown: labels and the test accuracy card.</summary>
    private IEnumerable<string> RunData() =>
        run.Run["labels"]!.AsArray().Select(l => (string)l!["name"]!).Append("test accuracy").Append("Teacher samples accepted");

    [Theory]
    [InlineData("/runs")]
    [InlineData("/runs/{id}")]
    public async Task An_anonymous_visitor_is_sent_to_sign_in_and_sees_no_run_data(string path)
    {
        using var http = Anonymous();
        using var response = await http.GetAsync(path.Replace("{id}", run.RunId.ToString()));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.StartsWith("/login?returnUrl=", response.Headers.Location!.OriginalString);
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain(run.RunId.ToString(), body);

        using var login = await http.GetAsync(response.Headers.Location);
        var page = await login.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, login.StatusCode);
        Assert.Contains("name=\"apiKey\"", page);
        foreach (var data in RunData()) Assert.DoesNotContain(data, page);
    }

    [Fact]
    public async Task A_wrong_key_neither_signs_in_nor_shows_data_and_a_forged_cookie_is_refused()
    {
        using var http = Anonymous();
        using var wrong = await http.PostAsync("/login", new FormUrlEncodedContent(
            new Dictionary<string, string> { ["apiKey"] = "not-the-key-of-this-gateway", ["returnUrl"] = $"/runs/{run.RunId}" }));
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.False(wrong.Headers.Contains("Set-Cookie"));
        Assert.Contains("is not this gateway", await wrong.Content.ReadAsStringAsync());

        using var forged = new HttpRequestMessage(HttpMethod.Get, $"/runs/{run.RunId}");
        forged.Headers.Add("Cookie", "pgkd_session=" + DistillationRunFixture.ApiKey); // the raw key is not a session
        using var refused = await http.SendAsync(forged);
        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
    }

    [Fact]
    public async Task Signing_in_sets_an_http_only_cookie_that_opens_the_report()
    {
        using var http = Anonymous();
        using var login = await http.PostAsync("/login", new FormUrlEncodedContent(
            new Dictionary<string, string> { ["apiKey"] = DistillationRunFixture.ApiKey, ["returnUrl"] = $"/runs/{run.RunId}" }));
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        Assert.Equal($"/runs/{run.RunId}", login.Headers.Location!.OriginalString);
        var cookie = Assert.Single(login.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(DistillationRunFixture.ApiKey, cookie);

        using var report = new HttpRequestMessage(HttpMethod.Get, $"/runs/{run.RunId}");
        report.Headers.Add("Cookie", cookie.Split(';')[0]);
        using var page = await http.SendAsync(report);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        Assert.Contains("default-src 'none'", page.Headers.GetValues("Content-Security-Policy").Single());
        foreach (var data in RunData()) Assert.Contains(data, html);
    }

    [Fact]
    public async Task The_api_key_header_opens_the_pages_too_and_the_list_links_the_run()
    {
        using var list = await run.Gateway.GetAsync("/runs");
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Contains($"href=\"/runs/{run.RunId}\"", await list.Content.ReadAsStringAsync());
        using var missing = await run.Gateway.GetAsync($"/runs/{Guid.NewGuid()}");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task The_best_models_files_download_with_the_key_and_not_without()
    {
        var best = (int)run.Run["bestRound"]!;
        using var onnx = await run.Gateway.GetAsync($"/v1/runs/{run.RunId}/model/model.onnx");
        Assert.Equal(HttpStatusCode.OK, onnx.StatusCode);
        Assert.Equal(best.ToString(), onnx.Headers.GetValues("X-Pgkd-Round").Single());
        Assert.True((await onnx.Content.ReadAsByteArrayAsync()).Length > 1_000_000, "model.onnx should hold the MiniLM weights");

        var labels = (await run.Gateway.GetStringAsync($"/v1/runs/{run.RunId}/model/labels.txt")).TrimEnd('\n').Split('\n');
        Assert.Equal(run.Run["labels"]!.AsArray().Select(l => (string)l!["name"]!), labels);
        var metadata = JsonNode.Parse(await run.Gateway.GetStringAsync($"/v1/runs/{run.RunId}/model/metadata.json"))!;
        Assert.Equal(labels, metadata["labels"]!.AsArray().Select(l => (string)l!));
        Assert.StartsWith("[PAD]", await run.Gateway.GetStringAsync($"/v1/runs/{run.RunId}/model/vocab.txt"));

        using var unknown = await run.Gateway.GetAsync($"/v1/runs/{run.RunId}/model/student.pt");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var http = Anonymous();
        using var anonymous = await http.GetAsync($"/v1/runs/{run.RunId}/model/model.onnx");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
    }
}
