// The trainer: fine-tunes the student on the grown dataset each round and stores its checkpoints.
using MassTransit;
using Pgkd.Storage;
using Pgkd.Student;
using Pgkd.Trainer;

// A fixed mmap threshold and two malloc arenas before libtorch allocates anything (see ProcessMemory).
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
    // One training at a time per trainer: it uses every core (or the GPU). More trainers = more replicas,
    // competing for the same queue.
    bus.AddConsumer<TrainRoundConsumer>().Endpoint(e => e.ConcurrentMessageLimit = 1);
});
builder.Services.AddSingleton<RunStore>();
// One long-lived trainer: it keeps the tokenizer, the head-mode embedding cache and the pretrained encoder.
builder.Services.AddSingleton(sp =>
{
    var logger = sp.GetRequiredService<ILogger<StudentTrainer>>();
    return new StudentTrainer(log: message => logger.LogInformation("{Message}", message));
});

var app = builder.Build();
app.MapDefaultEndpoints();
app.Run();
