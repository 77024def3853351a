// The trainer: fine-tunes the student on the grown dataset and stores checkpoints.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingResponder());

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
