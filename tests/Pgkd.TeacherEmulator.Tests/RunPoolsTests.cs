using Microsoft.Extensions.Logging.Abstractions;
using Pgkd.Storage;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>Issue 21 point 6: a run's own pool (stored by the gateway) answers that run only.</summary>
public sealed class RunPoolsTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    [Fact]
    public async Task A_run_with_a_stored_pool_gets_an_engine_on_it_and_every_other_run_the_default()
    {
        // The unambiguity filter off: a two-text pool has no neighbourhood to agree with.
        var options = new EmulatorOptions { ApiKey = "k", PoolPath = Emulators.DemoFile("pool.jsonl"), Policy = { MinAgreement = 0 } };
        var defaultEngine = new TeacherEngine(TeacherPool.Load(options), options);
        var pools = new RunPools(defaultEngine, options, NullLogger<RunPools>.Instance, azurite.Blobs);

        // Before any run stored anything there is no container: the default pool answers.
        Assert.Same(defaultEngine, await pools.EngineForAsync(Guid.NewGuid().ToString(), CancellationToken.None));

        var withPool = Guid.NewGuid();
        var container = azurite.Blobs.GetBlobContainerClient(RunBlobLayout.Container);
        await container.CreateIfNotExistsAsync();
        await container.GetBlobClient(RunBlobLayout.Pool(withPool)).UploadAsync(BinaryData.FromString(
            "{\"text\":\"Where is my refund for the lamp?\",\"label\":\"Refund\"}\n{\"text\":\"How do I send the coat back?\",\"label\":\"Return\"}\n"));

        var engine = await pools.EngineForAsync(withPool.ToString(), CancellationToken.None);
        Assert.NotSame(defaultEngine, engine);
        Assert.Equal(["Refund", "Return"], engine.Pool.Labels.Names);
        Assert.Equal($"runs/{RunBlobLayout.Pool(withPool)}", engine.Pool.Source);
        Assert.Same(engine, await pools.EngineForAsync(withPool.ToString(), CancellationToken.None)); // looked up once

        // Other runs, and requests that name no run, keep the default pool.
        Assert.Same(defaultEngine, await pools.EngineForAsync(Guid.NewGuid().ToString(), CancellationToken.None));
        Assert.Same(defaultEngine, await pools.EngineForAsync("default", CancellationToken.None));

        // Asked for 2 examples without guidance, the run's engine writes from the run's pool.
        var answer = engine.Answer([new ChatTurn("user", "Write 2 examples.")], withPool.ToString(), malformed: false);
        Assert.Equal(["Refund", "Return"], answer.Samples.Select(s => s.Label).Order());
    }

    [Fact]
    public async Task Only_the_most_recently_asked_runs_keep_their_engines_and_a_dropped_run_is_loaded_again()
    {
        var options = new EmulatorOptions { ApiKey = "k", PoolPath = Emulators.DemoFile("pool.jsonl"), Policy = { MinAgreement = 0 } };
        var defaultEngine = new TeacherEngine(TeacherPool.Load(options), options);
        var pools = new RunPools(defaultEngine, options, NullLogger<RunPools>.Instance, azurite.Blobs);
        var container = azurite.Blobs.GetBlobContainerClient(RunBlobLayout.Container);
        await container.CreateIfNotExistsAsync();
        var first = Guid.NewGuid();
        await container.GetBlobClient(RunBlobLayout.Pool(first)).UploadAsync(BinaryData.FromString(
            "{\"text\":\"Where is my refund for the lamp?\",\"label\":\"Refund\"}\n{\"text\":\"How do I send the coat back?\",\"label\":\"Return\"}\n"));
        var engine = await pools.EngineForAsync(first.ToString(), CancellationToken.None);

        // Twice the capacity of other runs (without pools of their own): the count stays bounded, the oldest run goes first.
        for (var i = 0; i < 2 * RunPools.Capacity; i++) await pools.EngineForAsync(Guid.NewGuid().ToString(), CancellationToken.None);
        Assert.Equal(RunPools.Capacity, pools.Count);

        var again = await pools.EngineForAsync(first.ToString(), CancellationToken.None);
        Assert.NotSame(engine, again); // dropped, then loaded again from the run's pool
        Assert.Equal(["Refund", "Return"], again.Pool.Labels.Names);
        Assert.Equal(RunPools.Capacity, pools.Count);
    }
}
