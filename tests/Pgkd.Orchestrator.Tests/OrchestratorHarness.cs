using System.Collections.Concurrent;
using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Contracts;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Metrics;
using Pgkd.Core.Run;
using Pgkd.Storage;

namespace Pgkd.Orchestrator.Tests;

/// <summary>
/// The orchestrator on MassTransit's in-memory test harness over a real Azurite, with the three step services played by
/// <see cref="StepServices"/>: each answers its command the way the real one does (the answering event, and for
/// evaluations the stored evaluation the planner reads), following a <see cref="Script"/> that can fail a step, hold
/// its answer back, or answer twice.
/// </summary>
public sealed class OrchestratorHarness : IAsyncDisposable
{
    public static readonly string[] Labels = ["World", "Sports", "Business"];

    private readonly ServiceProvider _provider;

    private OrchestratorHarness(ServiceProvider provider, Script script)
    {
        _provider = provider;
        Script = script;
        Harness = provider.GetRequiredService<ITestHarness>();
        Store = provider.GetRequiredService<RunStore>();
    }

    public ITestHarness Harness { get; }
    public RunStore Store { get; }
    public Script Script { get; }

    public static async Task<OrchestratorHarness> StartAsync(Azure.Storage.Blobs.BlobServiceClient blobs, Script? script = null)
    {
        script ??= new Script();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(blobs);
        services.AddSingleton<RunStore>();
        services.AddSingleton(script);
        services.AddMassTransitTestHarness(bus =>
        {
            bus.AddConsumer<RunOrchestrator>();
            bus.AddConsumer<StepServices>();
            bus.UsingInMemory((context, cfg) =>
            {
                // A publish that fails after the manifest was updated is the orchestrator dying in between: the message
                // is delivered again (immediate retry here; RabbitMQ's redelivery in production).
                cfg.UseMessageRetry(r => r.Immediate(3));
                cfg.ConfigurePublish(p => p.UseExecute(c =>
                {
                    // The context is a PublishContext<T> of the message's type; its Message is what is being published.
                    var message = c.GetType().GetProperty("Message")?.GetValue(c);
                    if (message is not null && script.CrashBeforePublishing(message))
                        throw new IOException($"simulated crash before publishing {message.GetType().Name}");
                    if (message is not null) script.Published.Enqueue(message);
                }));
                cfg.ConnectConsumeObserver(new EventCounter(script));
                cfg.ConfigureEndpoints(context);
            });
        });
        var provider = services.BuildServiceProvider(validateScopes: true);
        var harness = new OrchestratorHarness(provider, script);
        harness.Harness.TestTimeout = TimeSpan.FromMinutes(2);
        // "Settled": nothing consumed or published for this long (not a timing assertion: a slow machine only waits longer).
        harness.Harness.TestInactivityTimeout = TimeSpan.FromSeconds(1);
        await harness.Harness.Start();
        await harness.Store.EnsureContainerAsync();
        return harness;
    }

    /// <summary>A run as the gateway stores it: 3 labels, <paramref name="maxRounds"/> teacher rounds, optionally a test set.</summary>
    public async Task<Guid> CreateRunAsync(int maxRounds = 2, bool withTest = true, string mode = "head", RunStrategy strategy = RunStrategy.Pgkd)
    {
        var runId = Guid.NewGuid();
        var manifest = new RunManifest
        {
            RunId = runId,
            CreatedAt = DateTimeOffset.UnixEpoch,
            Labels = Labels.Select(l => new LabelDefinition(l)).ToList(),
            Configuration = RunConfiguration.Default with { MaxRounds = maxRounds, SamplesPerRound = 12, SelectionShare = 0, Seed = 7, Strategy = strategy },
            Student = new StudentSettings { Mode = mode },
            SeedTrain = new StoredDataset(RunBlobLayout.SeedTrain(runId), 12, "t"),
            SeedValidation = new StoredDataset(RunBlobLayout.SeedValidation(runId), 10, "v"),
            Test = withTest ? new StoredDataset(RunBlobLayout.Test(runId), 10, "x") : null,
        };
        Assert.True(await Store.CreateManifestAsync(manifest));
        return runId;
    }

    public Task StartRunAsync(Guid runId) =>
        Harness.Bus.Publish(new StartRun(runId, IdempotencyKeys.For(runId, "started"), Store.UriOf(RunBlobLayout.Manifest(runId)), DateTimeOffset.UnixEpoch));

    public Task CancelAsync(Guid runId) => Harness.Bus.Publish(new CancelRun(runId, IdempotencyKeys.For(runId, "cancel"), "cancelled by the test"));

    public async Task<RunManifest> ManifestAsync(Guid runId) => (await Store.ReadManifestAsync(runId))!;

    /// <summary>Waits until the run's manifest leaves Running, then until the bus is idle.</summary>
    public async Task<RunManifest> WaitForEndAsync(Guid runId)
    {
        // Generous: only a machine that stops for minutes fails this, and then the message says where the run stood.
        for (var i = 0; i < 1200; i++)
        {
            var manifest = await ManifestAsync(runId);
            if (manifest.IsFinished)
            {
                await SettleAsync();
                return await ManifestAsync(runId);
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"run {runId} did not finish: {(await ManifestAsync(runId)).Status}, rounds {(await ManifestAsync(runId)).Rounds.Count}");
    }

    /// <summary>Waits until the bus has been idle for a moment: every message published so far has been consumed.</summary>
    public async Task SettleAsync() => await Harness.InactivityTask.WaitAsync(TimeSpan.FromMinutes(2));

    /// <summary>How many events (the orchestrator's input) have been consumed so far, whatever the outcome.</summary>
    public int EventsConsumed => Script.EventsConsumed;

    /// <summary>The commands the orchestrator published for a run, in order (the harness's own lists wait for the bus to go idle).</summary>
    public IReadOnlyList<object> Commands(Guid runId) => Script.Published
        .Where(m => m is GenerateRound or TrainRound or EvaluateRound or RunCompleted && RunIdOf(m) == runId)
        .ToList();

    public static Guid RunIdOf(object message) => message switch
    {
        GenerateRound g => g.RunId,
        TrainRound t => t.RunId,
        EvaluateRound e => e.RunId,
        RunCompleted c => c.RunId,
        _ => Guid.Empty,
    };

    /// <summary>A command with its run id taken out, so two runs' commands compare as text.</summary>
    public static string Describe(object command, Guid runId) =>
        System.Text.Json.JsonSerializer.Serialize(command, command.GetType()).Replace(runId.ToString("N"), "RUN").Replace(runId.ToString("D"), "RUN")
        + " :" + command.GetType().Name;

    public async ValueTask DisposeAsync()
    {
        foreach (var hold in Script.Holds.Values) hold.TrySetResult(); // a failed test must not leave a step waiting forever
        await Harness.Stop();
        await _provider.DisposeAsync();
    }
}

/// <summary>What the played step services do, per command: fail, hold back, answer twice. Thread-safe.</summary>
public sealed class Script
{
    private readonly ConcurrentDictionary<string, int> _crashes = new();

    /// <summary>Commands ("generate", "train", "evaluate") with the round whose handler throws every time.</summary>
    public ConcurrentDictionary<(string Step, int Round), string> Failures { get; } = new();

    /// <summary>Steps whose answer waits until <see cref="Release"/>: the step is in flight meanwhile.</summary>
    public ConcurrentDictionary<(string Step, int Round), TaskCompletionSource> Holds { get; } = new();

    /// <summary>Every step publishes its event twice.</summary>
    public bool AnswerTwice { get; set; }

    /// <summary>Messages of these types fail once at publish (the first time only), as if the process died just before.</summary>
    public HashSet<Type> CrashOnceBeforePublishing { get; } = [];

    /// <summary>Accuracy of the student after each round's training (the evaluation the planner reads), by round.</summary>
    public Func<int, int> CorrectOfTen { get; set; } = round => Math.Min(5 + round, 10);

    public ConcurrentBag<object> Handled { get; } = [];

    /// <summary>Every message published, in order.</summary>
    public ConcurrentQueue<object> Published { get; } = new();

    private int _eventsConsumed;
    public int EventsConsumed => Volatile.Read(ref _eventsConsumed);
    internal void EventConsumed() => Interlocked.Increment(ref _eventsConsumed);

    public TaskCompletionSource Hold(string step, int round) => Holds.GetOrAdd((step, round), _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    internal bool CrashBeforePublishing(object message)
    {
        var type = message.GetType();
        if (!CrashOnceBeforePublishing.Contains(type)) return false;
        return _crashes.AddOrUpdate(type.Name + OrchestratorHarness.RunIdOf(message), 1, (_, n) => n + 1) == 1;
    }
}

/// <summary>Counts the events and run commands the orchestrator consumed, succeeded or not.</summary>
internal sealed class EventCounter(Script script) : IConsumeObserver
{
    private static bool IsOrchestratorInput(object message) => message is StartRun or CancelRun or RoundGenerated or RoundTrained or RoundEvaluated;

    public Task PreConsume<T>(ConsumeContext<T> context) where T : class => Task.CompletedTask;

    public Task PostConsume<T>(ConsumeContext<T> context) where T : class
    {
        if (IsOrchestratorInput(context.Message)) script.EventConsumed();
        return Task.CompletedTask;
    }

    public Task ConsumeFault<T>(ConsumeContext<T> context, Exception exception) where T : class => PostConsume(context);
}

/// <summary>The generator, trainer and evaluator as the orchestrator sees them: a command in, its event out.</summary>
public sealed class StepServices(Script script, RunStore store) : IConsumer<GenerateRound>, IConsumer<TrainRound>, IConsumer<EvaluateRound>
{
    public async Task Consume(ConsumeContext<GenerateRound> context)
    {
        var m = context.Message;
        await ActAsync("generate", m.Round);
        await AnswerAsync(context, new RoundGenerated(m.RunId, m.Round, m.IdempotencyKey, m.ShardUri, 12, 10,
            new Dictionary<string, int> { ["duplicate"] = 2 }, 1000, 500, 0.01m, 1.5, TeacherCalls: 1));
    }

    public async Task Consume(ConsumeContext<TrainRound> context)
    {
        var m = context.Message;
        await ActAsync("train", m.Round);
        await AnswerAsync(context, new RoundTrained(m.RunId, m.Round, m.IdempotencyKey, m.CheckpointUri, 12 + 10 * m.Round, 100, 0.5, 2));
    }

    public async Task Consume(ConsumeContext<EvaluateRound> context)
    {
        var m = context.Message;
        await ActAsync("evaluate", m.Round);
        var report = Report(script.CorrectOfTen(m.Round));
        var evaluation = new RoundEvaluation(m.Round, m.Split.ToString(), store.BlobNameOf(m.CheckpointUri), report, HardNegativeSelection.Empty);
        await store.WriteStepOutputAsync(store.BlobNameOf(m.EvaluationUri), BinaryData.FromObjectAsJson(evaluation, RunStore.Json), m.IdempotencyKey);
        await AnswerAsync(context, new RoundEvaluated(m.RunId, m.Round, m.IdempotencyKey, m.Split, m.EvaluationUri,
            report.ValidationLoss, report.Accuracy, report.MacroF1, 1));
    }

    private async Task ActAsync(string step, int round)
    {
        if (script.Holds.TryGetValue((step, round), out var hold)) await hold.Task;
        if (script.Failures.TryGetValue((step, round), out var failure)) throw new InvalidOperationException(failure);
    }

    private async Task AnswerAsync<T>(ConsumeContext context, T answer) where T : class
    {
        script.Handled.Add(answer);
        await context.Publish(answer);
        if (script.AnswerTwice) await context.Publish(answer);
    }

    /// <summary>A validation report of 10 texts, <paramref name="correct"/> of them right.</summary>
    public static ValidationReport Report(int correct)
    {
        var labels = new LabelSet(OrchestratorHarness.Labels.Select(l => new LabelDefinition(l)));
        var examples = Enumerable.Range(0, 10).Select(i => new LabeledExample($"text {i}", OrchestratorHarness.Labels[i % 3])).ToList();
        var probabilities = examples.Select((e, i) =>
        {
            var truth = labels.IndexOf(e.Label);
            var predicted = i < correct ? truth : (truth + 1) % 3;
            return (IReadOnlyList<double>)Enumerable.Range(0, 3).Select(c => c == predicted ? 0.8 : 0.1).ToArray();
        }).ToList();
        return ClassificationMetrics.Evaluate(new Dataset(examples), probabilities, labels);
    }
}
