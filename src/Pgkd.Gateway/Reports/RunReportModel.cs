using System.Text.Json;
using Pgkd.Core.Metrics;
using Pgkd.Storage;

namespace Pgkd.Gateway.Reports;

/// <summary>
/// One round as the report shows it: the manifest's figures plus what the round's documents add (accepted samples
/// per class from the shard, the validation report with its confusion matrix, the hard negatives mined from it, and what the
/// orchestrator asked the teacher for: the per-class allocation with its floor and cap). Documents a round has not written yet are null.
/// </summary>
public sealed record RoundView(RoundRecord Record, IReadOnlyList<int>? AcceptedByClass, RoundEvaluation? Validation, RoundGuidance? Guidance = null);

/// <summary>Everything the run report page draws, read from the run's blobs.</summary>
public sealed record RunReportModel(RunManifest Manifest, IReadOnlyList<RoundView> Rounds)
{
    public IReadOnlyList<string> Labels => Manifest.Labels.Select(l => l.Name).ToList();

    public RoundView? Best => Manifest.BestRound is { } b ? Rounds.FirstOrDefault(r => r.Record.Round == b) : null;

    public static async Task<RunReportModel?> LoadAsync(RunStore store, Guid runId, CancellationToken cancellationToken)
    {
        var manifest = await store.ReadManifestAsync(runId, cancellationToken);
        if (manifest is null) return null;
        var labels = manifest.Labels.Select(l => l.Name).ToList();
        var rounds = await Task.WhenAll(manifest.Rounds.Select(async record =>
        {
            IReadOnlyList<int>? accepted = null;
            if (record.ShardBlob is { } shard && await store.ExistsAsync(shard, cancellationToken))
                accepted = CountByLabel((await store.ReadAsync(shard, cancellationToken)).ToString(), labels);
            var evaluationBlob = RunBlobLayout.Evaluation(runId, record.Round, "validation");
            var evaluation = await store.ExistsAsync(evaluationBlob, cancellationToken)
                ? (await store.ReadAsync(evaluationBlob, cancellationToken)).ToObjectFromJson<RoundEvaluation>(RunStore.Json)
                : null;
            var guidanceBlob = RunBlobLayout.Guidance(runId, record.Round);
            var guidance = record.Round > 0 && await store.ExistsAsync(guidanceBlob, cancellationToken)
                ? (await store.ReadAsync(guidanceBlob, cancellationToken)).ToObjectFromJson<RoundGuidance>(RunStore.Json)
                : null;
            return new RoundView(record, accepted, evaluation, guidance);
        }));
        return new RunReportModel(manifest, rounds);
    }

    /// <summary>Examples per label (in label order) in a JSONL shard; lines with an unknown label are not counted.</summary>
    public static IReadOnlyList<int> CountByLabel(string jsonl, IReadOnlyList<string> labels)
    {
        var counts = new int[labels.Count];
        var index = labels.Select((name, i) => (name, i)).ToDictionary(x => x.name, x => x.i, StringComparer.Ordinal);
        foreach (var line in jsonl.Split('\n'))
        {
            if (line.Trim().Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            if (doc.RootElement.TryGetProperty("label", out var label) && label.GetString() is { } name && index.TryGetValue(name, out var i))
                counts[i]++;
        }
        return counts;
    }

    /// <summary>The report on held-out data to show as the headline matrix: test when scored, else the best round's validation.</summary>
    public (string Title, ValidationReport Report)? HeadlineMatrix =>
        Manifest.TestReport is { } test ? ("Confusion matrix, test set (best round)", test)
        : Best?.Validation is { } v ? ($"Confusion matrix, validation, round {v.Round}", v.Report)
        : null;
}
