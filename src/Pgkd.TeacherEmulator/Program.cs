// The teacher emulator: an OpenAI-compatible endpoint for offline runs and tests, the way Azurite stands in for Azure Storage.
// It answers the project's generation prompt from a labeled pool, following the prompt's guidance block (see TeacherEngine),
// on the OpenAI route /v1/chat/completions and the Azure route /openai/deployments/{deployment}/chat/completions.
using Pgkd.TeacherEmulator;

// At most two malloc arenas (ServiceMemory, issue 19.1).
ServiceMemory.ConfigureNativeHeap();

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingResponder());
builder.AddTeacherEmulator();

var app = builder.Build();
app.MapDefaultEndpoints();
app.MapTeacherEmulator();
app.Logger.LogInformation("Teacher emulator pool: {Pool} ({Count} texts, {Excluded} held-out texts dropped)",
    app.Services.GetRequiredService<TeacherPool>().Source, app.Services.GetRequiredService<TeacherPool>().Examples.Count,
    app.Services.GetRequiredService<TeacherPool>().ExcludedCount);
app.Run();
