using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Pgkd.Student.Serving;

/// <summary>
/// The gateway's serving figures on the project's meter (<c>PgkdAspire</c>), so the dashboard and the Prometheus scrape
/// endpoint show them, each tagged with the model: requests and texts by outcome, batch size and padded tokens, queue
/// wait, inference time, shed requests by reason, the queue's depth, and the top-class confidence of every answer
/// (a drift in it is the first sign that traffic no longer looks like the training data).
/// </summary>
public static class ServingMetrics
{
    /// <summary>The project's meter, which ServiceDefaults exports (its Extensions.ActivitySourceName; this project does not depend on it).</summary>
    public const string MeterName = "PgkdAspire";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Requests = Meter.CreateCounter<long>("pgkd.serving.requests", "{request}", "Classify requests by outcome (ok, shed, bad_request, no_model, cancelled, error).");
    private static readonly Counter<long> Texts = Meter.CreateCounter<long>("pgkd.serving.texts", "{text}", "Texts in classify requests, by outcome.");
    private static readonly Counter<long> ShedRequests = Meter.CreateCounter<long>("pgkd.serving.shed", "{request}", "Requests shed with 503, by reason (queue_full, deadline).");
    private static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>("pgkd.serving.batch.size", "{text}", "Texts per ONNX Runtime run.",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 48, 64, 128] });
    private static readonly Histogram<int> BatchTokens = Meter.CreateHistogram<int>("pgkd.serving.batch.padded_tokens", "{token}", "Padded tokens per run (texts × the longest).",
        advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [64, 256, 1024, 2048, 4096, 8192, 16384] });
    private static readonly Histogram<double> QueueWaitSeconds = Meter.CreateHistogram<double>("pgkd.serving.queue.wait", "s", "How long a text waited for its batch.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10] });
    private static readonly Histogram<double> InferenceSeconds = Meter.CreateHistogram<double>("pgkd.serving.inference.duration", "s", "Time of one ONNX Runtime run.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2] });
    private static readonly Histogram<double> Confidence = Meter.CreateHistogram<double>("pgkd.serving.confidence", "1", "The top class's probability of each classified text.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] });

    private static readonly ConcurrentDictionary<InferenceEngine, byte> Engines = new();

    static ServingMetrics() =>
        Meter.CreateObservableGauge("pgkd.serving.queue.depth", () => Engines.Keys.Select(e => new Measurement<int>(e.QueuedTexts, Model(e.ModelId))),
            "{text}", "Texts waiting for a batch, per served model.");

    private static KeyValuePair<string, object?> Model(string modelId) => new("pgkd.model", modelId);

    internal static void Track(InferenceEngine engine) => Engines.TryAdd(engine, 0);

    internal static void Untrack(InferenceEngine engine) => Engines.TryRemove(engine, out _);

    public static void Request(string? modelId, string outcome, int texts)
    {
        var tags = new[] { Model(modelId ?? "none"), new KeyValuePair<string, object?>("pgkd.outcome", outcome) };
        Requests.Add(1, tags);
        Texts.Add(texts, tags);
    }

    public static void Shed(string modelId, string reason) =>
        ShedRequests.Add(1, Model(modelId), new KeyValuePair<string, object?>("pgkd.reason", reason));

    public static void Batch(string modelId, int texts, int paddedTokens, TimeSpan elapsed)
    {
        var model = Model(modelId);
        BatchSize.Record(texts, model);
        BatchTokens.Record(paddedTokens, model);
        InferenceSeconds.Record(elapsed.TotalSeconds, model);
    }

    public static void QueueWait(string modelId, TimeSpan waited) => QueueWaitSeconds.Record(waited.TotalSeconds, Model(modelId));

    public static void TopConfidence(string modelId, double confidence) => Confidence.Record(confidence, Model(modelId));
}
