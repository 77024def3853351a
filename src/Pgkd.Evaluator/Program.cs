// The evaluator: scores the student on validation (and once on test) and mines hard negatives.
using Pgkd.Evaluator;
using Pgkd.Storage;
using Pgkd.Student;

// A fixed mmap threshold and two malloc arenas before ONNX Runtime allocates anything (see ProcessMemory).
ProcessMemory.Configure();
var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddPgkdBlobs();
builder.AddStartupWarmUp("run documents", _ => RunStore.WarmUpSerialization());
builder.AddPgkdBus(bus =>
{
    bus.AddPingResponder();
    // Each job's freed tensors, arenas and upload buffers go back to the system once its result is announced (issue 19.1).
    bus.AddAfterEachMessage("memory release", ProcessMemory.Release);
    bus.AddConsumer<EvaluateRoundConsumer>();
});
builder.Services.AddSingleton<RunStore>();
// The pretrained MiniLM vocabulary, shared by every checkpoint (their metadata names its hash).
builder.Services.AddSingleton(_ => StudentTokenizer.ForPretrained(PretrainedMiniLM.Ensure()));
// The pretrained encoder every head-only checkpoint runs on: one session and one embedding cache for the process.
builder.Services.AddSingleton(sp => new PretrainedEmbedder(PretrainedMiniLM.Ensure(), sp.GetRequiredService<StudentTokenizer>(), new OnnxRunOptions
{
    Threads = sp.GetRequiredService<IConfiguration>().GetValue("Evaluator:Threads", 0),
    Log = message => sp.GetRequiredService<ILogger<PretrainedEmbedder>>().LogInformation("{Message}", message),
}));

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
