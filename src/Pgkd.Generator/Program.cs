// The generator: prompts the teacher LLM with the student's weaknesses and stores the validated samples.
// The teacher comes from ConnectionStrings:teacher (Azure OpenAI, any OpenAI-compatible endpoint, or the emulator);
// see Teacher/TeacherConnection.cs for the format and Teacher/TeacherClientOptions.cs for retries, prices and budget.
using Pgkd.Generator.Rounds;
using Pgkd.Generator.Teacher;
using Pgkd.Storage;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus =>
{
    bus.AddPingResponder();
    bus.AddConsumer<GenerateRoundConsumer>();
});
builder.Services.AddSingleton<RunStore>();
builder.AddTeacherClient();

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
