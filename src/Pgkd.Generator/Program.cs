// The generator: prompts the teacher LLM with the student's weaknesses and stores the validated samples.
// The teacher comes from ConnectionStrings:teacher (Azure OpenAI, any OpenAI-compatible endpoint, or the emulator);
// see Teacher/TeacherConnection.cs for the format and Teacher/TeacherClientOptions.cs for retries, prices and budget.
using Pgkd.Generator.Teacher;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingResponder());
builder.AddTeacherClient();

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
