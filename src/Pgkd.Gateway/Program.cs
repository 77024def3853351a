// The gateway: the public HTTP API. Users start and watch distillation runs and classify text with the student
// here. It stores a new run's data and sends StartRun / CancelRun; the orchestrator service drives the rounds.
using System.Text.Json.Serialization;
using OpenTelemetry.Metrics;
using Pgkd.Gateway;
using Pgkd.Gateway.Diagnostics;
using Pgkd.Gateway.Models;
using Pgkd.Gateway.Runs;
using Pgkd.Gateway.Security;
using Pgkd.Storage;
using Pgkd.Student;
using Scalar.AspNetCore;

// A fixed mmap threshold and two malloc arenas before ONNX Runtime allocates anything (see ProcessMemory).
ProcessMemory.Configure();
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus =>
{
    bus.AddPingCollector();
    ModelSwapper.Register(bus);
});
builder.Services.AddSingleton<PingTracker>();
builder.Services.AddSingleton<PipelinePing>();
builder.Services.AddHostedService<PipelineCheckAtStart>(); // each service answers once at start: wiring checked, first trips paid
builder.Services.AddSingleton<RunStore>();
builder.Services.AddSingleton<RunForecaster>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddRequestGuards();
builder.Services.AddSingleton(_ => StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure()));
builder.Services.AddSingleton<ModelRegistry>();
builder.AddGatewayAuthentication(); // every endpoint needs the key or a session unless marked anonymous (Security/)
builder.Services.AddProblemDetails();
// Serving metrics (Serving/ServingMetrics.cs) also as a Prometheus scrape at /metrics, behind the key like everything else.
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddPrometheusExporter());
builder.Services.AddOpenApi();
builder.Services.ConfigureHttpJsonOptions(options =>
{
    options.SerializerOptions.Converters.Add(new JsonStringEnumConverter());
    // A misspelt configuration field is an error, not a silently ignored default.
    options.SerializerOptions.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
});

var app = builder.Build();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseRouting();
app.UseGatewayAuthentication(); // authentication, the failed-sign-in limit, authorization
app.UseRequestGuards(); // /v1: content type, size, UTF-8 and JSON checked before any endpoint (RequestGuards.cs)
app.MapDefaultEndpoints();
app.MapOpenApi();
app.MapScalarApiReference().WithMetadata(HtmlPage.Instance);
app.MapGet("/", () => Results.Redirect("/scalar")).ExcludeFromDescription().WithMetadata(HtmlPage.Instance);
app.MapDiagnostics();
app.MapPrometheusScrapingEndpoint();

var v1 = app.MapGroup("/v1");
v1.MapRuns();
v1.MapModels();
v1.MapModelFiles();
app.MapReports();

app.Run();

/// <summary>Visible to the tests' WebApplicationFactory, which lists every endpoint this program maps.</summary>
public partial class Program;
