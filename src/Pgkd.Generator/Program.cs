// The generator: prompts the teacher LLM with the student's weaknesses and stores the validated samples.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingResponder());

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
