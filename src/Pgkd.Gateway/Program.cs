// The gateway: the public HTTP API. Users start and watch distillation runs and classify text with the student
// here; it also drives each run through its rounds (Runs/RunOrchestrator.cs).
using System.Text.Json.Serialization;
using Pgkd.Gateway;
using Pgkd.Gateway.Diagnostics;
using Pgkd.Gateway.Models;
using Pgkd.Gateway.Runs;
using Pgkd.Storage;
using Pgkd.Student;
using Scalar.AspNetCore;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus =>
{
    bus.AddPingCollector();
    bus.AddConsumer<RunOrchestrator>();
    ModelSwapper.Register(bus);
});
builder.Services.AddSingleton<PingTracker>();
builder.Services.AddSingleton<RunStore>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<ApiKeyFilter>();
builder.Services.AddRequestGuards();
builder.Services.AddSingleton(_ => StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure()));
builder.Services.AddSingleton<ModelRegistry>();
builder.Services.AddProblemDetails();
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
app.UseRequestGuards(); // /v1: key, content type, size, UTF-8 and JSON checked before any endpoint (RequestGuards.cs)
app.MapDefaultEndpoints();
app.MapOpenApi();
app.MapScalarApiReference();
app.MapGet("/", () => Results.Redirect("/scalar")).ExcludeFromDescription();
app.MapDiagnostics();

var v1 = app.MapGroup("/v1").AddEndpointFilter<ApiKeyFilter>();
v1.MapRuns();
v1.MapModels();
v1.MapModelFiles();
app.MapReports();

app.Run();
