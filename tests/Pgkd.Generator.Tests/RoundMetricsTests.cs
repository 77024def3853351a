using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;

namespace Pgkd.Generator.Tests;

/// <summary>
/// Each round's figures reach the dashboard as metrics of meter PgkdAspire, tagged with the run and the round, so a
/// chart of one run shows its rounds apart.
/// </summary>
public class RoundMetricsTests
{
    [Fact]
    public void Round_figures_are_recorded_with_run_and_round_tags()
    {
        var runId = Guid.NewGuid();
        var seen = new List<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Extensions.ActivitySourceName) l.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var dict = new Dictionary<string, object?>();
            foreach (var tag in tags) dict[tag.Key] = tag.Value;
            if (Equals(dict.GetValueOrDefault("pgkd.run_id"), runId.ToString())) lock (seen) seen.Add((instrument.Name, value, dict));
        }
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        PgkdMetrics.Generated(runId, 2, requested: 16, accepted: 15, rejected: 1, tokens: 2_315, costUsd: 0.0009m);
        PgkdMetrics.Evaluated(runId, 2, "Validation", loss: 0.0546, accuracy: 0.95, macroF1: 0.94);

        foreach (var (name, value) in new[]
                 {
                     ("pgkd.round.teacher_tokens", 2_315.0), ("pgkd.teacher.cost", 0.0009), ("pgkd.validation.accuracy", 0.95),
                     ("pgkd.validation.macro_f1", 0.94), ("pgkd.validation.loss", 0.0546),
                 })
        {
            var m = Assert.Single(seen, s => s.Instrument == name);
            Assert.Equal(value, m.Value, 6);
            Assert.Equal(2, m.Tags["pgkd.round"]);
        }
        Assert.Equal("Validation", seen.Single(s => s.Instrument == "pgkd.validation.accuracy").Tags["pgkd.split"]);
    }
}
