using Pgkd.Core.Data;
using Pgkd.Core.Run;

namespace Pgkd.Storage.Tests;

public sealed class RunStoreTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>
{
    private async Task<RunStore> StoreAsync()
    {
        var store = new RunStore(azurite.Blobs);
        await store.EnsureContainerAsync();
        return store;
    }

    private static RunManifest NewManifest(Guid runId) => new()
    {
        RunId = runId,
        CreatedAt = new DateTimeOffset(2026, 11, 25, 4, 0, 0, TimeSpan.Zero),
        Labels = [new LabelDefinition("World", "international news"), new LabelDefinition("Sports")],
        Configuration = RunConfiguration.Default with { MaxRounds = 3, SamplesPerRound = 32, Strategy = RunStrategy.RandomAugmentation },
        SeedTrain = new StoredDataset(RunBlobLayout.SeedTrain(runId), 800, "abc"),
        SeedValidation = new StoredDataset(RunBlobLayout.SeedValidation(runId), 200, "def"),
    };

    [Fact]
    public async Task A_write_once_blob_accepts_the_same_bytes_again_and_refuses_different_ones()
    {
        var store = await StoreAsync();
        var name = RunBlobLayout.RoundShard(Guid.NewGuid(), 1);
        var original = BinaryData.FromString("{\"text\":\"a\",\"label\":\"World\"}\n");

        Assert.True(await store.WriteOnceAsync(name, original));
        Assert.False(await store.WriteOnceAsync(name, BinaryData.FromString(original.ToString())), "a retry with the same bytes is a no-op");

        var conflict = await Assert.ThrowsAsync<StoredDataConflictException>(() =>
            store.WriteOnceAsync(name, BinaryData.FromString("{\"text\":\"b\",\"label\":\"World\"}\n")));
        Assert.Contains(name, conflict.Message);
        Assert.Equal(original.ToString(), (await store.ReadAsync(name)).ToString());
    }

    [Fact]
    public async Task A_step_output_names_its_command_and_the_build_that_wrote_it()
    {
        var store = await StoreAsync();
        var name = RunBlobLayout.Evaluation(Guid.NewGuid(), 0, "Validation");
        Assert.Null(await store.ReadStepOutputAsync(name, "run/evaluate/round-0"));
        Assert.True(await store.WriteStepOutputAsync(name, BinaryData.FromString("{}"), "run/evaluate/round-0"));

        Assert.Equal("{}", (await store.ReadStepOutputAsync(name, "run/evaluate/round-0"))!.ToString());
        var other = await Assert.ThrowsAsync<StoredDataConflictException>(() => store.ReadStepOutputAsync(name, "run/evaluate/round-1"));
        Assert.Contains("run/evaluate/round-0", other.Message);
        var metadata = (await azurite.Blobs.GetBlobContainerClient(RunBlobLayout.Container).GetBlobClient(name).GetPropertiesAsync()).Value.Metadata;
        Assert.Equal(CodeVersion.Current, metadata[RunStore.CodeMetadata]);
        // The SDK ends the informational version with the git commit the build came from.
        Assert.Matches(@"\+[0-9a-f]{7,40}$", CodeVersion.Current);
    }

    [Fact]
    public async Task The_manifest_round_trips_with_its_configuration_and_rounds()
    {
        var store = await StoreAsync();
        var runId = Guid.NewGuid();
        var manifest = NewManifest(runId).WithRound(new RoundRecord(0) { Accuracy = 0.8, CheckpointFolder = RunBlobLayout.CheckpointFolder(runId, 0) });
        Assert.True(await store.CreateManifestAsync(manifest));

        var read = await store.ReadManifestAsync(runId);
        Assert.NotNull(read);
        Assert.Equal(RunStrategy.RandomAugmentation, read.Configuration.Strategy);
        Assert.Equal(32, read.Configuration.SamplesPerRound);
        Assert.Equal("international news", read.Labels[0].Description);
        Assert.Equal(0.8, read.Round(0).Accuracy);
        Assert.Equal($"{runId:D}/checkpoints/round-0/", read.Round(0).CheckpointFolder);
        Assert.Contains("\"status\": \"Running\"", (await store.ReadAsync(RunBlobLayout.Manifest(runId))).ToString());
    }

    [Fact]
    public async Task An_update_that_changes_nothing_writes_nothing()
    {
        var store = await StoreAsync();
        var runId = Guid.NewGuid();
        Assert.True(await store.CreateManifestAsync(NewManifest(runId)));
        var before = (await store.ReadAsync(RunBlobLayout.Manifest(runId))).ToString();

        var same = await store.UpdateManifestAsync(runId, run => run);
        Assert.Equal(before, (await store.ReadAsync(RunBlobLayout.Manifest(runId))).ToString());
        var changed = await store.UpdateManifestAsync(runId, run => run with { CancelRequested = true });
        Assert.True(changed.UpdatedAt > same.UpdatedAt);
        Assert.NotEqual(before, (await store.ReadAsync(RunBlobLayout.Manifest(runId))).ToString());
    }

    [Fact]
    public async Task Concurrent_manifest_updates_lose_nothing()
    {
        var store = await StoreAsync();
        var runId = Guid.NewGuid();
        await store.CreateManifestAsync(NewManifest(runId));

        // Eight writers race; each adds its own round. ETag conditions make every one of them land.
        await Task.WhenAll(Enumerable.Range(1, 8).Select(round =>
            Task.Run(() => store.UpdateManifestAsync(runId, m => m.WithRound(new RoundRecord(round) { Accepted = round })))));

        var read = await store.ReadManifestAsync(runId);
        Assert.Equal(Enumerable.Range(1, 8), read!.Rounds.Select(r => r.Round));
        Assert.All(read.Rounds, r => Assert.Equal(r.Round, r.Accepted));
    }

    [Fact]
    public async Task A_second_create_of_a_different_run_document_under_the_same_id_is_refused()
    {
        var store = await StoreAsync();
        var runId = Guid.NewGuid();
        await store.CreateManifestAsync(NewManifest(runId));
        await Assert.ThrowsAsync<StoredDataConflictException>(() =>
            store.CreateManifestAsync(NewManifest(runId) with { Status = RunStatus.Failed }));
        Assert.Equal(RunStatus.Running, (await store.ReadManifestAsync(runId))!.Status);
    }

    [Fact]
    public async Task Runs_are_listed_and_blob_names_map_back_from_their_uris()
    {
        var store = await StoreAsync();
        var runId = Guid.NewGuid();
        await store.CreateManifestAsync(NewManifest(runId));

        var ids = new List<Guid>();
        await foreach (var id in store.ListRunIdsAsync()) ids.Add(id);
        Assert.Contains(runId, ids);

        var name = RunBlobLayout.Evaluation(runId, 2, "Validation");
        Assert.Equal($"{runId:D}/evaluations/round-2-validation.json", name);
        Assert.Equal(name, store.BlobNameOf(store.UriOf(name)));
        var folder = RunBlobLayout.CheckpointFolder(runId, 1);
        Assert.Equal(folder, store.BlobNameOf(store.UriOf(folder)));
        Assert.EndsWith("/", folder);
        Assert.Throws<ArgumentException>(() => store.BlobNameOf(new Uri("http://127.0.0.1:1/devstoreaccount1/other/x.json")));
        Assert.Null(await store.ReadManifestAsync(Guid.NewGuid()));
    }

    [Fact]
    public void The_layout_matches_the_documented_one()
    {
        var runId = Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e");
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e/manifest.json", RunBlobLayout.Manifest(runId));
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e/data/seed-train.jsonl", RunBlobLayout.SeedTrain(runId));
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e/data/seed-val.jsonl", RunBlobLayout.SeedValidation(runId));
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e/data/round-3.jsonl", RunBlobLayout.RoundShard(runId, 3));
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e/checkpoints/round-3/", RunBlobLayout.CheckpointFolder(runId, 3));
        Assert.Equal("0f8fad5b-d9cb-469f-a165-70867728950e/report.json", RunBlobLayout.Report(runId));
        Assert.Throws<ArgumentOutOfRangeException>(() => RunBlobLayout.RoundShard(runId, -1));
    }
}
