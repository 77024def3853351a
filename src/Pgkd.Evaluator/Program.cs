// The evaluator: scores the student on validation and mines hard negatives.
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddPgkdBus(bus => bus.AddPingResponder());

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
