using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Teacher;
using Xunit.Abstractions;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>The default pool is AG News from ../shared/data when present; without it the demo data (checked visibly).</summary>
public sealed class AgNewsPoolTests(ITestOutputHelper output)
{
    [Fact]
    public async Task DefaultPool_IsAgNewsWhenPresent_ElseTheDemoData()
    {
        var agnews = SharedData.FindDataset("agnews");
        var settings = Emulators.Settings();
        settings.Remove("Emulator:PoolPath");
        await using var server = await TeacherEmulatorServer.StartAsync(settings);
        var pool = server.Engine.Pool;
        output.WriteLine($"pool: {pool.Source}, {pool.Examples.Count} texts, {pool.ExcludedCount} excluded");
        if (agnews is null)
        {
            output.WriteLine("SKIPPED (visibly): ../shared/data/agnews is absent here; the emulator fell back to the demo data.");
            Assert.Equal(Path.Combine(SharedData.DemoDataDirectory, "pool.jsonl"), pool.Source);
            return;
        }
        Assert.Equal(Path.Combine(agnews, "pool.jsonl"), pool.Source);
        Assert.InRange(pool.Examples.Count, 3000, 3600);
        Assert.Equal(["World", "Sports", "Business", "Sci/Tech"], pool.Labels.Names);

        // A guided AG News round: hard negatives from the real validation data.
        var labels = pool.Labels;
        Dataset Read(string f) { using var s = File.OpenRead(Path.Combine(agnews, f)); return DatasetReader.ReadJsonl(s, f, new DatasetReadOptions { Labels = labels }); }
        var val = Read("seed_val.jsonl");
        var heldOut = val.TextHashes();
        heldOut.UnionWith(Read("test.jsonl").TextHashes());
        var hard = val.Examples.Where(e => e.Label == "Sci/Tech").Take(3).Select(e => new HardNegative(e.Text, e.Label, "Business", 0.9)).ToArray();
        var prompt = TeacherPromptBuilder.Build(new TeacherPromptInput
        {
            Labels = labels, TaskDescription = "Classify news articles by topic.", Allocation = [4, 4, 4, 4],
            FewShotPool = Read("seed_train.jsonl").Examples, Selection = new HardNegativeSelection(hard, [], []), Round = 1, Seed = 1,
        });
        using var http = Emulators.Http(server);
        // The first guided answer on AG News computes label agreement over the whole pool (12 s here when idle, past
        // the default 30 s client timeout when the 2 cores are loaded): this test checks the answer, not its speed.
        http.Timeout = TimeSpan.FromMinutes(5);
        var samples = await Emulators.AskAsync(http, prompt, "run-agnews");
        Assert.Equal([4, 4, 4, 4], new Dataset(samples).CountByLabel(labels));
        Assert.DoesNotContain(samples, s => heldOut.Contains(TextHash.Of(s.Text)));
    }
}
