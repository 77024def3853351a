using System.Globalization;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace PgkdAspire.FunctionalTests;

/// <summary>
/// The run report in a real browser: the system Chromium, headless, driven by Playwright (which never downloads a
/// browser here). Checks that the charts rendered with one mark per data point and a real size on screen, that the
/// page fits a laptop screen and loads nothing from elsewhere, and saves screenshots.
/// </summary>
[Collection(DistillationCollection.Name)]
public sealed class BrowserReportTests(DistillationRunFixture run, ITestOutputHelper log)
{
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>Where the screenshots go (docs/images/run-report.png in the README is a copy of the viewport one).</summary>
    public static string ScreenshotFolder => Path.Combine(AppContext.BaseDirectory, "screenshots");

    [Fact]
    public async Task The_report_of_a_finished_run_renders_its_charts_in_chromium()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: run scripts/bootstrap.sh (it installs the Debian chromium package)");
        var origin = run.Gateway.BaseAddress!.GetLeftPart(UriPartial.Authority);
        var userData = Directory.CreateTempSubdirectory("pgkd-chromium-").FullName;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(userData, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"],
            ViewportSize = new ViewportSize { Width = 1366, Height = 768 }, // a laptop screen
        });
        try
        {
            var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
            var foreign = new List<string>();
            page.Request += (_, request) =>
            {
                if (!request.Url.StartsWith(origin, StringComparison.Ordinal) && !request.Url.StartsWith("data:", StringComparison.Ordinal))
                    foreign.Add(request.Url);
            };

            // Anonymous: the report sends us to sign in, and shows nothing of the run.
            await page.GotoAsync($"{origin}/runs/{run.RunId}");
            Assert.StartsWith($"{origin}/login", page.Url);
            Assert.Equal(0, await page.Locator("svg.chart").CountAsync());

            await page.FillAsync("#key", DistillationRunFixture.ApiKey);
            await page.ClickAsync("button[type=submit]");
            await page.WaitForURLAsync($"{origin}/runs/{run.RunId}");
            Assert.Equal("Completed", await page.InnerTextAsync("#run-status"));

            var rounds = run.Run["rounds"]!.AsArray();
            var labels = run.Run["labels"]!.AsArray().Count;
            var teacherRounds = rounds.Count - 1;

            // One point per round and metric (accuracy, macro-F1, and the selection part's accuracy: the demo run splits
            // its validation data), at the manifest's values.
            await AssertMarks(page, "#chart-quality circle.point", 3 * rounds.Count);
            var accuracy = await page.Locator("#chart-quality circle.point[data-series=accuracy]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.value)");
            Assert.Equal(rounds.Select(r => (double)r!["accuracy"]!), accuracy.Select(v => double.Parse(v, CultureInfo.InvariantCulture)));
            var selection = await page.Locator("#chart-quality circle.point[data-series='selection accuracy']").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.value)");
            Assert.Equal(rounds.Select(r => (double)r!["selectionAccuracy"]!), selection.Select(v => double.Parse(v, CultureInfo.InvariantCulture)));
            await AssertMarks(page, "#chart-loss circle.point", rounds.Count);
            // Bars: accepted per class and teacher round; tokens and cost per teacher round.
            await AssertMarks(page, "#chart-accepted rect.bar", labels * teacherRounds);
            await AssertMarks(page, "#chart-tokens rect.bar", teacherRounds);
            await AssertMarks(page, "#chart-cost rect.bar", teacherRounds);
            Assert.True(await page.Locator("#chart-rejected rect.bar").CountAsync() >= teacherRounds);
            // The test set's confusion matrix: labels × labels cells whose counts add up to the test set.
            await AssertMarks(page, "#heatmap-headline rect.cell", labels * labels);
            var cells = await page.Locator("#heatmap-headline rect.cell").EvaluateAllAsync<int[]>("els => els.map(e => +e.dataset.value)");
            Assert.Equal((int)run.Run["testReport"]!["count"]!, cells.Sum());

            foreach (var chart in await page.Locator("svg.chart").AllAsync())
            {
                var box = await chart.BoundingBoxAsync();
                Assert.True(box is { Width: > 200, Height: > 150 }, $"a chart is {box?.Width}x{box?.Height} px");
            }
            Assert.Equal((string)run.Run["bestRound"]!.ToString(), (await page.InnerTextAsync("#best-round .v")).Trim());
            Assert.Contains("%", await page.InnerTextAsync("#test-accuracy .v"));
            Assert.True(await page.Locator("table.hard-negatives tbody tr").CountAsync() > 0 || await page.Locator("#no-hard-negatives").IsVisibleAsync());

            // Fits a laptop screen: no sideways scrolling.
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"),
                "the report scrolls sideways at 1366 px");
            Assert.Empty(foreign);

            Directory.CreateDirectory(ScreenshotFolder);
            var viewport = Path.Combine(ScreenshotFolder, "run-report.png");
            var full = Path.Combine(ScreenshotFolder, "run-report-full.png");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = viewport });
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = full, FullPage = true });
            Assert.True(new FileInfo(viewport).Length > 10_000, "the screenshot is (nearly) blank");
            log.WriteLine($"screenshots: {viewport}, {full}");

            await page.GotoAsync($"{origin}/runs");
            Assert.Equal(1, await page.Locator($"a[href='/runs/{run.RunId}']").CountAsync());
        }
        finally
        {
            await browser.CloseAsync();
            Directory.Delete(userData, recursive: true);
        }
    }

    /// <summary>Exactly <paramref name="count"/> marks, every one laid out (a bar of value 0 may be flat but is still placed).</summary>
    private static async Task AssertMarks(IPage page, string selector, int count)
    {
        var marks = await page.Locator(selector).AllAsync();
        Assert.True(marks.Count == count, $"{selector}: {marks.Count} marks, expected {count}");
        foreach (var mark in marks)
        {
            var box = await mark.BoundingBoxAsync();
            var value = double.Parse(await mark.GetAttributeAsync("data-value") ?? "0", CultureInfo.InvariantCulture);
            Assert.True(box is not null && box.Width > 0 && (box.Height > 0 || value == 0), $"{selector} value {value}: box {box?.Width}x{box?.Height}");
        }
    }
}
