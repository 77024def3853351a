using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Pgkd.Student.Serving;

namespace Pgkd.Gateway.Models;

/// <summary>Classify text with the student; list the models the gateway can serve.</summary>
public static class ModelEndpoints
{
    /// <summary>Texts per request; larger batches are answered 413.</summary>
    public const int MaxBatch = 64;

    /// <summary>Characters per text; the student reads at most 512 tokens anyway.</summary>
    public const int MaxTextLength = 10_000;

    public sealed record ClassifyRequest(string? Text = null, IReadOnlyList<string>? Texts = null, Guid? Run = null);

    public sealed record Prediction(string Label, double Confidence, IReadOnlyDictionary<string, double> Probabilities);

    public sealed record ClassifyResponse(string Model, IReadOnlyList<Prediction> Predictions);

    /// <summary>A completed run's best model; <paramref name="Precision"/> is the graph this gateway serves it with (Gateway:Inference:Precision).</summary>
    public sealed record ModelInfo(string Id, Guid RunId, int BestRound, bool Default, double? ValidationAccuracy, double? TestAccuracy,
        IReadOnlyList<string> Labels, DateTimeOffset CompletedAt, string Precision);

    public static RouteGroupBuilder MapModels(this RouteGroupBuilder v1)
    {
        v1.MapPost("/classify", ClassifyAsync).WithTags("Models")
            .WithSummary($"Classify one text or a batch of up to {MaxBatch}")
            .WithDescription("With \"run\", the best model of that completed run; otherwise the best model of the latest completed run.");
        v1.MapGet("/models", ListAsync).WithTags("Models").WithSummary("Models of completed runs; the default one is served when none is chosen");
        return v1;
    }

    private static async Task<Results<Ok<ClassifyResponse>, ProblemHttpResult>> ClassifyAsync(
        ClassifyRequest request, ModelRegistry registry, HttpContext http, CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? texts = request switch
        {
            { Text: not null, Texts: not null } => null,
            { Text: { } one } => [one],
            { Texts: { } many } => many,
            _ => null,
        };
        var count = texts?.Count ?? 0;
        ProblemHttpResult Refused(int status, string title, string detail)
        {
            ServingMetrics.Request(null, status == 404 ? "no_model" : "bad_request", count);
            return Problem(status, title, detail);
        }
        if (texts is null)
            return Refused(400, "Nothing to classify", "send either \"text\" (one string) or \"texts\" (an array of strings), not both");
        if (texts.Count == 0) return Refused(400, "Nothing to classify", "\"texts\" is empty");
        if (texts.Count > MaxBatch)
            return Refused(413, "Batch too large", $"at most {MaxBatch} texts per request, got {texts.Count}");
        for (var i = 0; i < texts.Count; i++)
        {
            var where = request.Text is not null ? "text" : $"texts[{i}]";
            if (string.IsNullOrWhiteSpace(texts[i])) return Refused(400, "Empty text", $"{where} is empty or only whitespace");
            if (texts[i].Length > MaxTextLength)
                return Refused(413, "Text too long", $"{where} has {texts[i].Length} characters; at most {MaxTextLength}");
        }

        var leased = await registry.LeaseAsync(request.Run, cancellationToken);
        if (leased is not { } acquired)
            return Refused(404, "No model to serve", request.Run is { } run
                ? $"run {run} has not completed (or does not exist)"
                : "no run has completed yet: start one with POST /v1/runs");
        using var lease = acquired;
        var model = lease.Model;
        float[][] probabilities;
        try
        {
            probabilities = await model.Engine.ClassifyAsync(texts, cancellationToken);
        }
        catch (InferenceQueueFullException e)
        {
            ServingMetrics.Shed(model.Id, "queue_full");
            ServingMetrics.Request(model.Id, "shed", count);
            return Overloaded(http, "Model busy", e.Message, e.RetryAfter);
        }
        catch (InferenceDeadlineException e)
        {
            ServingMetrics.Request(model.Id, "shed", count);
            return Overloaded(http, "Deadline passed", e.Message, e.RetryAfter);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            ServingMetrics.Request(model.Id, "cancelled", count);
            throw;
        }

        var labels = model.Student.Labels;
        var predictions = probabilities.Select(row =>
        {
            var best = Array.IndexOf(row, row.Max());
            ServingMetrics.TopConfidence(model.Id, row[best]);
            return new Prediction(labels[best], row[best], labels.Select((label, i) => (label, p: (double)row[i])).ToDictionary(x => x.label, x => x.p));
        }).ToList();
        ServingMetrics.Request(model.Id, "ok", count);
        return TypedResults.Ok(new ClassifyResponse(model.Id, predictions));
    }

    /// <summary>503 with Retry-After: the client should come back, not retry at once.</summary>
    private static ProblemHttpResult Overloaded(HttpContext http, string title, string detail, TimeSpan retryAfter)
    {
        // Whole seconds (RFC 9110 delay-seconds), at least 1: a 0 would have every shed client retry at once.
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return TypedResults.Problem(title: title, detail: detail, statusCode: StatusCodes.Status503ServiceUnavailable,
            extensions: new Dictionary<string, object?> { ["retryAfterSeconds"] = seconds });
    }

    private static async Task<Ok<IReadOnlyList<ModelInfo>>> ListAsync(ModelRegistry registry, CancellationToken cancellationToken)
    {
        var runs = await registry.CompletedRunsAsync(cancellationToken);
        var precision = registry.InferenceOptions().Precision.ToString();
        var defaultId = runs.Count == 0 ? null : ModelRegistry.IdOf(runs[0].RunId, runs[0].BestRound!.Value);
        return TypedResults.Ok<IReadOnlyList<ModelInfo>>(runs.Select(r =>
        {
            var id = ModelRegistry.IdOf(r.RunId, r.BestRound!.Value);
            return new ModelInfo(id, r.RunId, r.BestRound!.Value, id == defaultId, r.Round(r.BestRound.Value).Accuracy, r.TestReport?.Accuracy,
                r.Labels.Select(l => l.Name).ToList(), r.UpdatedAt, precision);
        }).ToList());
    }

    private static ProblemHttpResult Problem(int status, string title, string detail) =>
        TypedResults.Problem(title: title, detail: detail, statusCode: status);
}
