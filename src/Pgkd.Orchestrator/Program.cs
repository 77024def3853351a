// The orchestrator: drives every run through its rounds (RunOrchestrator.cs). It holds no state of its own: each
// run's state is its manifest in blob storage, so it can restart, or run as several replicas, at any moment.
using Pgkd.Orchestrator;
using Pgkd.Storage;

// At most two malloc arenas, and a collection after handled messages, at most every 5 s (ServiceMemory, issue 19.1).
ServiceMemory.ConfigureNativeHeap();

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddStartupWarmUp("run documents", _ => RunStore.WarmUpSerialization());
builder.AddPgkdBus(bus =>
{
    bus.AddPingResponder();
    bus.AddConsumer<RunOrchestrator>();
    bus.AddAfterEachMessage("memory release", ServiceMemory.ReleaseAfterJob);
});
builder.Services.AddSingleton<RunStore>();

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
