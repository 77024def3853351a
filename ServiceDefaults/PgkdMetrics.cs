using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The round-by-round figures of a run as OpenTelemetry metrics (meter <c>PgkdAspire</c>), tagged with the run id
/// (<c>pgkd.run_id</c>) and the round (<c>pgkd.round</c>), so the dashboard charts them and filters one run's rounds; the same figures are set as attributes on the step's span. A step records them once,
/// when it does the work: a redelivered message that only re-announces a stored result records nothing, so counters
/// do not count twice. Teacher tokens are counted per call, by the teacher client (<c>pgkd.teacher.tokens</c>).
/// </summary>
public static class PgkdMetrics
{
    private static readonly Meter Meter = new(Extensions.ActivitySourceName);

    private static readonly Gauge<int> RoundGauge = Meter.CreateGauge<int>("pgkd.round", description: "The round a run last finished a step of");
    private static readonly Counter<long> SamplesRequested = Meter.CreateCounter<long>("pgkd.teacher.samples.requested", "{sample}");
    private static readonly Counter<long> SamplesAccepted = Meter.CreateCounter<long>("pgkd.teacher.samples.accepted", "{sample}");
    private static readonly Counter<long> SamplesRejected = Meter.CreateCounter<long>("pgkd.teacher.samples.rejected", "{sample}");
    private static readonly Counter<double> TeacherCost = Meter.CreateCounter<double>("pgkd.teacher.cost", "USD");
    private static readonly Counter<long> RoundTeacherTokens = Meter.CreateCounter<long>("pgkd.round.teacher_tokens", "{token}",
        "Teacher tokens (prompt and completion) a round's generation used");
    private static readonly Gauge<double> ExamplesPerSecond = Meter.CreateGauge<double>("pgkd.training.examples_per_second", "{example}/s");
    private static readonly Gauge<double> TrainingLoss = Meter.CreateGauge<double>("pgkd.training.loss");
    private static readonly Gauge<double> ValidationLoss = Meter.CreateGauge<double>("pgkd.validation.loss");
    private static readonly Gauge<double> ValidationAccuracy = Meter.CreateGauge<double>("pgkd.validation.accuracy");
    private static readonly Gauge<double> ValidationMacroF1 = Meter.CreateGauge<double>("pgkd.validation.macro_f1");

    private static TagList Tags(Guid runId, int round) => new() { { "pgkd.run_id", runId.ToString() }, { "pgkd.round", round } };

    public static void Generated(Guid runId, int round, int requested, int accepted, int rejected, long tokens, decimal costUsd)
    {
        var tags = Tags(runId, round);
        RoundGauge.Record(round, tags);
        RoundTeacherTokens.Add(tokens, tags);
        SamplesRequested.Add(requested, tags);
        SamplesAccepted.Add(accepted, tags);
        SamplesRejected.Add(rejected, tags);
        TeacherCost.Add((double)costUsd, tags);
        Activity.Current?.SetTag("pgkd.samples.requested", requested).SetTag("pgkd.samples.accepted", accepted)
            .SetTag("pgkd.samples.rejected", rejected).SetTag("pgkd.teacher.tokens", tokens).SetTag("pgkd.teacher.cost_usd", (double)costUsd);
    }

    public static void Trained(Guid runId, int round, int examples, double examplesPerSecond, double loss)
    {
        var tags = Tags(runId, round);
        RoundGauge.Record(round, tags);
        ExamplesPerSecond.Record(examplesPerSecond, tags);
        TrainingLoss.Record(loss, tags);
        Activity.Current?.SetTag("pgkd.training.examples", examples).SetTag("pgkd.training.examples_per_second", examplesPerSecond)
            .SetTag("pgkd.training.loss", loss);
    }

    public static void Evaluated(Guid runId, int round, string split, double loss, double accuracy, double macroF1)
    {
        var tags = Tags(runId, round);
        tags.Add("pgkd.split", split);
        RoundGauge.Record(round, Tags(runId, round));
        ValidationLoss.Record(loss, tags);
        ValidationAccuracy.Record(accuracy, tags);
        ValidationMacroF1.Record(macroF1, tags);
        Activity.Current?.SetTag("pgkd.split", split).SetTag("pgkd.validation.loss", loss)
            .SetTag("pgkd.validation.accuracy", accuracy).SetTag("pgkd.validation.macro_f1", macroF1);
    }

    /// <summary>A span for one step of a round, child of the consumer's span (and so of the round's trace).</summary>
    public static Activity? StartStep(string name, Guid runId, int round) =>
        Extensions.ActivitySource.StartActivity(name, ActivityKind.Internal)?
            .SetTag("pgkd.run_id", runId.ToString()).SetTag("pgkd.round", round);
}
