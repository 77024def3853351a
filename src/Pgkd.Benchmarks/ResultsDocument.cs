using System.Text;

namespace Pgkd.Benchmarks;

/// <summary>
/// docs/results.md is assembled from one fragment per section (docs/results/{section}.md), so running one section
/// replaces its own fragment and keeps the others' last measurements. Each fragment says how and when it was measured.
/// </summary>
public static class ResultsDocument
{
    public static string FragmentPath(string outputDirectory, string section) =>
        Path.Combine(outputDirectory, "results", section + ".md");

    public static string AssetDirectory(string outputDirectory) => Path.Combine(outputDirectory, "results");

    public static void WriteFragment(string outputDirectory, string section, string markdown)
    {
        Directory.CreateDirectory(AssetDirectory(outputDirectory));
        File.WriteAllText(FragmentPath(outputDirectory, section), markdown.TrimEnd() + "\n");
    }

    /// <summary>Writes results.md: the header, then every section's fragment that exists, in the fixed order.</summary>
    public static string Compose(string outputDirectory)
    {
        var text = new StringBuilder();
        text.AppendLine("# Results");
        text.AppendLine();
        text.AppendLine("Regenerate with `./build.sh bench` (options: `./build.sh bench --help`). Each section below is written by its");
        text.AppendLine("part of the benchmark (`--sections quality|speed|batching|anatomy|serving-memory|engine-load|int8|emulator`) and says on which machine and with which");
        text.AppendLine("options it was measured; a section run alone replaces only its own part. Nothing here is tuned on the test set.");
        // The one hand-written part: what the numbers below mean. Regenerating the numbers does not rewrite it, so it
        // names the measurements it was written for.
        var findings = Path.Combine(AssetDirectory(outputDirectory), "findings.md");
        if (File.Exists(findings))
        {
            text.AppendLine();
            text.Append(File.ReadAllText(findings));
        }
        foreach (var section in BenchmarkOptions.AllSections)
        {
            // The quality section has a fragment per dataset (quality-agnews.md, quality-banking77.md), in name order.
            var paths = section == "quality" && Directory.Exists(AssetDirectory(outputDirectory))
                ? Directory.GetFiles(AssetDirectory(outputDirectory), "quality-*.md").Order(StringComparer.Ordinal).ToArray()
                : [FragmentPath(outputDirectory, section)];
            foreach (var path in paths.Where(File.Exists))
            {
                text.AppendLine();
                text.Append(File.ReadAllText(path));
            }
        }
        var output = Path.Combine(outputDirectory, "results.md");
        File.WriteAllText(output, text.ToString());
        return output;
    }
}
