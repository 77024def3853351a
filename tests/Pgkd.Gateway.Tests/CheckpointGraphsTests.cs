using Microsoft.Extensions.Logging.Abstractions;
using Pgkd.Gateway.Models;

namespace Pgkd.Gateway.Tests;

/// <summary>The gateway's local model copies stay bounded: a long-lived gateway kept one per model ever served and filled the disk.</summary>
public sealed class CheckpointGraphsTests
{
    [Fact]
    public void Only_the_most_recently_used_copies_are_kept_in_a_folder_of_this_process()
    {
        Assert.EndsWith(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), CheckpointGraphs.Root);
        var runs = Enumerable.Range(0, 5).Select(_ => Guid.NewGuid()).ToArray();
        var kept = CheckpointGraphs.MaxLocalCopies;
        try
        {
            CheckpointGraphs.MaxLocalCopies = 2;
            for (var i = 0; i < runs.Length; i++)
            {
                var folder = CheckpointGraphs.LocalFolder(runs[i], 1);
                Directory.CreateDirectory(folder);
                File.WriteAllText(Path.Combine(folder, "model.onnx"), "graph");
                Directory.SetLastWriteTimeUtc(folder, new DateTime(2026, 1, 1, 0, 0, i, DateTimeKind.Utc)); // run i used at second i
            }
            // Run 1 used again: it is now the most recent.
            Directory.SetLastWriteTimeUtc(CheckpointGraphs.LocalFolder(runs[1], 1), new DateTime(2026, 1, 1, 0, 1, 0, DateTimeKind.Utc));

            CheckpointGraphs.TrimLocalCopies(NullLogger.Instance);

            var left = runs.Where(r => Directory.Exists(CheckpointGraphs.LocalFolder(r, 1))).ToArray();
            Assert.Equal([runs[1], runs[4]], left.OrderBy(r => Array.IndexOf(runs, r)));
        }
        finally
        {
            CheckpointGraphs.MaxLocalCopies = kept;
            foreach (var run in runs)
                if (Directory.Exists(CheckpointGraphs.LocalFolder(run, 1))) Directory.Delete(CheckpointGraphs.LocalFolder(run, 1), recursive: true);
        }
    }
}
