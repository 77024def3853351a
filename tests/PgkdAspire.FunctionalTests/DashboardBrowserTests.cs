using System.Net.Http.Json;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Pgkd.Contracts;
using PgkdAspire.AppHost.Dashboard;
using Xunit.Abstractions;

namespace PgkdAspire.FunctionalTests;

/// <summary>
/// The Aspire dashboard itself, as a user meets it after the shared run: headless Chromium (Debian's, driven by
/// Playwright) opens the login link, sees no development-certificate banner, finds the run's round traces by typing
/// the run id into the traces filter, checks that none carries an error marker, and saves a screenshot
/// (docs/images/dashboard-traces.png in the README is a copy). The gateway's resource commands are invoked as the
/// dashboard's buttons invoke them.
/// </summary>
[Collection(DistillationCollection.Name)]
public sealed class DashboardBrowserTests(DistillationRunFixture run, ITestOutputHelper log)
{
    private const string CertificateBanner = "development certificate";

    [Fact]
    public async Task The_dashboard_signs_in_with_the_login_link_and_lists_the_runs_round_traces_without_errors()
    {
        Assert.True(File.Exists(BrowserReportTests.Chromium), $"{BrowserReportTests.Chromium} is missing: run scripts/bootstrap.sh (it installs the Debian chromium package)");
        var runId = run.RunId.ToString();
        var rounds = run.Run["rounds"]!.AsArray().Count;
        var userData = Directory.CreateTempSubdirectory("pgkd-chromium-").FullName;
        Directory.CreateDirectory(BrowserReportTests.ScreenshotFolder);
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(userData, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = BrowserReportTests.Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
            ViewportSize = new ViewportSize { Width = 1600, Height = 900 },
        });
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
        page.SetDefaultTimeout(60_000); // a loaded 2-core machine renders Blazor slowly
        try
        {
            // Without the token the dashboard asks for one; the login link signs in and lands on the resources.
            await page.GotoAsync(new Uri(run.DashboardUrl, "/").ToString());
            Assert.Contains("/login", page.Url);
            await page.GotoAsync(run.DashboardLoginUrl.ToString());
            await Dump(page, "dashboard-login");
            await page.WaitForURLAsync(url => !url.Contains("/login", StringComparison.Ordinal), new() { WaitUntil = WaitUntilState.Commit });
            await page.GetByText(ServiceNames.Gateway, new() { Exact = true }).First.WaitForAsync();
            // The gateway's commands show as buttons in its row; "Open the latest report" answers with a dialog that links
            // the newest run's report page on the gateway.
            await page.GetByRole(AriaRole.Button, new() { Name = "Start a demo run" }).WaitForAsync();
            await page.GetByRole(AriaRole.Button, new() { Name = "Open the latest report" }).ClickAsync();
            var reportLink = page.GetByRole(AriaRole.Link, new() { Name = "Open the report" });
            await reportLink.WaitForAsync();
            Assert.Matches($"^http://[^/]+:{run.Gateway.BaseAddress!.Port}/runs/[0-9a-f-]{{36}}$", await reportLink.GetAttributeAsync("href") ?? "");
            await Dump(page, "dashboard-command");
            await page.Keyboard.PressAsync("Escape");
            // The banner, when there is one, is a message bar the dashboard shows once it has loaded: give it time to come.
            await page.WaitForTimeoutAsync(3000);
            await Dump(page, "dashboard-resources");
            var banners = await page.GetByText(CertificateBanner).CountAsync();

            await page.GotoAsync(new Uri(run.DashboardUrl, "/traces").ToString());
            // The traces filter (a Fluent UI text field): type into its inner input as a user would.
            var filter = page.Locator("fluent-text-input[name=traces-search] input, input[name=traces-search]").First;
            await filter.ClickAsync();
            await filter.PressSequentiallyAsync(runId);
            var names = Enumerable.Range(0, rounds).Select(r => $"pgkd round {r} · run {runId}").ToList();
            foreach (var name in names) await page.GetByText(name).First.WaitForAsync();
            await page.WaitForTimeoutAsync(1000);
            await Dump(page, "dashboard-traces");
            banners += await page.GetByText(CertificateBanner).CountAsync();

            var rows = page.Locator("[role=row]").Filter(new() { HasText = $"· run {runId}" });
            Assert.Equal(rounds, await rows.CountAsync());
            foreach (var row in await rows.AllAsync())
            {
                // The Spans column has one tag per resource; a resource with an error span gets a red ErrorCircle icon in
                // its tag (Aspire.Dashboard's Traces.razor: ".trace-service-tag" holding a ".trace-tag-icon"); without
                // errors a tag holds its text only. Overflowed tags ("+2") stay in the DOM, hidden, and count too.
                Assert.True(await row.Locator(".trace-service-tag").CountAsync() >= 3, $"no resource tags in {await row.InnerTextAsync()}");
                var markers = row.Locator(".trace-service-tag .trace-tag-icon, .trace-service-tag svg");
                Assert.True(await markers.CountAsync() == 0, $"a round trace shows an error marker: {await row.InnerTextAsync()}");
            }

            var screenshot = Path.Combine(BrowserReportTests.ScreenshotFolder, "dashboard-traces.png");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = screenshot });
            Assert.True(new FileInfo(screenshot).Length > 10_000, "the screenshot is (nearly) blank");
            Assert.True(banners == 0, "the dashboard shows a development-certificate banner");
            log.WriteLine($"screenshot: {screenshot}");
        }
        finally
        {
            await browser.CloseAsync();
            Directory.Delete(userData, recursive: true);
        }
    }

    [Fact]
    public async Task The_gateways_commands_start_a_demo_run_and_give_the_latest_report()
    {
        var commands = run.App.Services.GetRequiredService<ResourceCommandService>();
        // The newest run (other tests of the collection may have started runs after the shared one).
        var newest = (string?)(await run.Gateway.GetFromJsonAsync<System.Text.Json.Nodes.JsonArray>("/v1/runs"))![0]!["runId"];
        var latest = await commands.ExecuteCommandAsync(ServiceNames.Gateway, GatewayCommands.OpenLatestReport);
        Assert.True(latest.Success, latest.Message);
        Assert.Contains($"/runs/{newest}", latest.Message);

        var started = await commands.ExecuteCommandAsync(ServiceNames.Gateway, GatewayCommands.StartDemoRun);
        Assert.True(started.Success, started.Message);
        var runId = Assert.Single(System.Text.RegularExpressions.Regex.Matches(started.Message!, "[0-9a-f]{8}-[0-9a-f-]{27}").Select(m => m.Value).Distinct());
        try
        {
            using var status = await run.Gateway.GetAsync($"/v1/runs/{runId}");
            Assert.True(status.IsSuccessStatusCode, $"GET /v1/runs/{runId}: {(int)status.StatusCode}");
            var next = await commands.ExecuteCommandAsync(ServiceNames.Gateway, GatewayCommands.OpenLatestReport);
            Assert.Contains($"/runs/{runId}", next.Message);
        }
        finally
        {
            // The shared run's other tests keep the machine to themselves.
            await run.Gateway.PostAsync($"/v1/runs/{runId}/cancel", null);
        }
    }

    /// <summary>The page's HTML and a screenshot, for reading what the dashboard showed when an assertion fails.</summary>
    private async Task Dump(IPage page, string name)
    {
        await File.WriteAllTextAsync(Path.Combine(BrowserReportTests.ScreenshotFolder, name + ".html"), await page.ContentAsync());
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(BrowserReportTests.ScreenshotFolder, name + ".png") });
        log.WriteLine($"{name}: {page.Url}");
    }
}
