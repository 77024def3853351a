// The teacher emulator: an OpenAI-compatible endpoint for offline runs and tests, the way Azurite stands in for Azure Storage.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingResponder());

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
