// The generator: prompts the teacher LLM with the student's weaknesses and stores the validated samples.
// The teacher comes from ConnectionStrings:teacher (Azure OpenAI, any OpenAI-compatible endpoint, or the emulator);
// see Teacher/TeacherConnection.cs for the format and Teacher/TeacherClientOptions.cs for retries, prices and budget.
using Pgkd.Generator.Rounds;
using Pgkd.Generator.Teacher;
using Pgkd.Storage;

// At most two malloc arenas, and a collection after handled messages, at most every 5 s (ServiceMemory, issue 19.1).
ServiceMemory.ConfigureNativeHeap();

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
// The first round should not pay for JSON contracts and the teacher tokenizer's ranks (a few MB).
builder.AddStartupWarmUp("run documents, teacher tokenizer", sp =>
{
    RunStore.WarmUpSerialization();
    sp.GetRequiredService<TeacherClient>().Tokenizer.CountTokens("warm up");
});
builder.AddPgkdBus(bus =>
{
    bus.AddPingResponder();
    bus.AddConsumer<GenerateRoundConsumer>();
    bus.AddAfterEachMessage("memory release", ServiceMemory.ReleaseAfterJob);
});
builder.Services.AddSingleton<RunStore>();
builder.AddTeacherClient();

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
