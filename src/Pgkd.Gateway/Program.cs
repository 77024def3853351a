// The gateway: the public HTTP API. Users start and watch distillation runs and classify text with the student here.
using Pgkd.Gateway.Diagnostics;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingCollector());
builder.Services.AddSingleton<PingTracker>();
builder.Services.AddProblemDetails();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapGet("/", () => Results.Text("PgkdAspire gateway. See /health and POST /api/diagnostics/ping."));
app.MapDiagnostics();
app.Run();
