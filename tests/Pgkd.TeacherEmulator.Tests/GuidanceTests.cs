using Pgkd.Core.Data;
using Pgkd.Core.Guidance;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>The emulator follows the prompt's machine-readable guidance, never repeats itself within a run, never leaks held-out text.</summary>
public sealed class GuidanceTests
{
    [Fact]
    public async Task PerClassCounts_FollowTheAllocation_AndLabelsMatchThePool()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var samples = await Emulators.AskAsync(http, Emulators.Prompt([5, 3, 0, 6]), "run-alloc");

        var labels = Emulators.Labels;
        Assert.Equal([5, 3, 0, 6], new Dataset(samples).CountByLabel(labels));
        var poolLabel = Emulators.Read("pool.jsonl").Examples.ToDictionary(e => e.Text, e => e.Label);
        Assert.All(samples, s => Assert.Equal(poolLabel[s.Text], s.Label));
    }

    [Fact]
    public async Task ForAClassWithHardNegatives_ItReturnsUnambiguousDiverseTextsFromTheirNeighbourhoods()
    {
        // The demo pool has 48 texts per class: a neighbourhood of 5 (not the default 30) keeps "near" meaningful.
        await using var server = await Emulators.StartAsync(("Emulator:Policy:Neighbourhood", "5"));
        using var http = Emulators.Http(server);
        var business = Emulators.Read("seed_val.jsonl").Examples.Where(e => e.Label == "Business").Take(2).ToArray();
        var hard = business.Select(e => new HardNegative(e.Text, "Business", "World", 0.9)).ToArray();

        var samples = await Emulators.AskAsync(http, Emulators.Prompt([0, 0, 4, 0], hard), "run-hard");
        Assert.Equal(4, samples.Count);
        Assert.All(samples, s => Assert.Equal("Business", s.Label));

        // Independently: the policy's candidates are the Business texts that agree with their own neighbourhood; each
        // hard negative's neighbourhood is its 5 nearest such candidates.
        var pool = server.Engine.Pool;
        var policy = new TeacherPolicyOptions { Neighbourhood = 5 };
        var candidates = pool.OfLabel("Business").Where(i => pool.LabelAgreement(i, policy.AgreementNeighbours) >= policy.MinAgreement).ToList();
        var neighbourhoods = hard.Select(h =>
        {
            var q = pool.Index.Embed(h.Text);
            return candidates.OrderByDescending(i => TfIdfIndex.Cosine(q, pool.Index.Document(i))).ThenBy(i => i)
                .Take(policy.Neighbourhood).Select(i => pool.Examples[i].Text).ToHashSet();
        }).ToArray();
        Assert.All(samples, s => Assert.Contains(neighbourhoods, set => set.Contains(s.Text)));
        var vectors = samples.Select(s => pool.Index.Embed(s.Text)).ToArray();
        for (var a = 0; a < vectors.Length; a++)
            for (var b = a + 1; b < vectors.Length; b++)
                Assert.True(TfIdfIndex.Cosine(vectors[a], vectors[b]) <= policy.MaxPairCosine + 1e-9, $"samples {a} and {b} are near-duplicates");

        double MeanSimilarity(IEnumerable<string> texts) => texts.Average(t =>
            hard.Max(h => TfIdfIndex.Cosine(pool.Index.Embed(h.Text), pool.Index.Embed(t))));
        var all = pool.OfLabel("Business").Select(i => pool.Examples[i].Text).ToArray();
        Assert.True(MeanSimilarity(samples.Select(s => s.Text)) > MeanSimilarity(all) + 0.05);
    }

    [Fact]
    public async Task TextsThatReadLikeAnotherClass_AreNeverWritten()
    {
        var dir = Directory.CreateTempSubdirectory("pgkd-emulator-");
        try
        {
            // The demo pool plus "World" texts made of Sports texts: mislabeled-looking, their neighbours are Sports.
            var sports = Emulators.Read("pool.jsonl").Examples.Where(e => e.Label == "Sports").Take(6).ToArray();
            var odd = Enumerable.Range(0, 3).Select(i => $"{sports[2 * i].Text} {sports[2 * i + 1].Text}").ToArray();
            var pool = Path.Combine(dir.FullName, "pool.jsonl");
            File.WriteAllLines(pool, File.ReadAllLines(Emulators.DemoFile("pool.jsonl"))
                .Concat(odd.Select(t => System.Text.Json.JsonSerializer.Serialize(new { text = t, label = "World" }))));
            File.Copy(Emulators.DemoFile("labels.txt"), Path.Combine(dir.FullName, "labels.txt"));
            await using var server = await Emulators.StartAsync(("Emulator:PoolPath", pool));
            var policy = new TeacherPolicyOptions();
            var engine = server.Engine.Pool;
            var oddIndices = odd.Select(t => engine.Examples.Select((e, i) => (e, i)).First(x => x.e.Text == t).i).ToArray();
            Assert.All(oddIndices, i => Assert.True(engine.LabelAgreement(i, policy.AgreementNeighbours) < policy.MinAgreement));

            using var http = Emulators.Http(server);
            var world = engine.OfLabel("World").Count;
            var samples = await Emulators.AskAsync(http, Emulators.Prompt([world, 0, 0, 0]), "run-ambiguous");
            Assert.True(samples.Count > world / 2, $"only {samples.Count} of {world} World texts written");
            Assert.DoesNotContain(samples, s => odd.Contains(s.Text));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task WithoutHardNegatives_TheAblation_GetsRandomTextsOfEachRequestedClass()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var hard = Emulators.Read("seed_val.jsonl").Examples.Take(3).Select(e => new HardNegative(e.Text, e.Label, "World", 0.9)).ToArray();
        var prompt = Emulators.Prompt([4, 4, 4, 4], hard, includeHardNegatives: false);
        Assert.True(Pgkd.Core.Teacher.TeacherPromptBuilder.TryExtractGuidance(prompt.User, out var g));
        Assert.Empty(g!.HardNegatives);

        var a = await Emulators.AskAsync(http, prompt, "run-x");
        var again = await Emulators.AskAsync(http, prompt, "run-x");
        Assert.Equal([4, 4, 4, 4], new Dataset(a).CountByLabel(Emulators.Labels));
        Assert.Equal([4, 4, 4, 4], new Dataset(again).CountByLabel(Emulators.Labels));
        Assert.Equal(a.Select(s => s.Text), again.Select(s => s.Text)); // the same request again (a retry): the same reply
        var next = await Emulators.AskAsync(http, Emulators.Prompt([4, 4, 4, 4], hard, includeHardNegatives: false, round: 2), "run-x");
        Assert.Equal([4, 4, 4, 4], new Dataset(next).CountByLabel(Emulators.Labels));
        Assert.Empty(next.Select(s => s.Text).Intersect(a.Select(s => s.Text))); // another request: other texts
    }

    [Fact]
    public async Task ARoundAskedAgain_GetsTheRepliesOfTheRunUndisturbed()
    {
        // Issue 19.5: the generator killed mid-round asks the round's requests again after its restart; the replies, and so
        // the shard, must be those of the same run undisturbed, and the rounds after it must not notice.
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var hard = Emulators.Read("seed_val.jsonl").Examples.Take(4).Select(e => new HardNegative(e.Text, e.Label, "World", 0.9)).ToArray();
        TeacherPrompt[] prompts = [Emulators.Prompt([3, 3, 3, 3]), Emulators.Prompt([2, 4, 2, 4], hard, round: 2), Emulators.Prompt([3, 3, 3, 3], round: 3)];
        async Task<List<string>> Ask(TeacherPrompt prompt, string runId) =>
            (await Emulators.AskAsync(http, prompt, runId)).Select(s => s.Label + "|" + s.Text).ToList();

        var undisturbed = new List<string>();
        foreach (var prompt in prompts) undisturbed.AddRange(await Ask(prompt, "run-undisturbed"));

        var disturbed = new List<string>();
        disturbed.AddRange(await Ask(prompts[0], "run-disturbed"));
        await Ask(prompts[1], "run-disturbed"); // answered, but the shard was never stored
        disturbed.AddRange(await Ask(prompts[1], "run-disturbed")); // the round asked again
        disturbed.AddRange(await Ask(prompts[2], "run-disturbed"));

        Assert.Equal(undisturbed, disturbed);
        Assert.Equal(undisturbed.Count, undisturbed.Distinct().Count());
        Assert.Equal((3, undisturbed.Count), server.Engine.RunCounts("run-undisturbed"));
        Assert.Equal((4, undisturbed.Count), server.Engine.RunCounts("run-disturbed")); // the repeat shows in the count
    }

    [Fact]
    public async Task RepliesDependOnTheRequests_NotOnTheRunId()
    {
        // Issue 19.3: two runs with the same data, configuration and seed ask the same prompts; they get the same replies.
        await using var server = await Emulators.StartAsync(("Emulator:Faults:LabelNoiseRate", "0.2"));
        using var http = Emulators.Http(server);
        var hard = Emulators.Read("seed_val.jsonl").Examples.Take(4).Select(e => new HardNegative(e.Text, e.Label, "World", 0.9)).ToArray();
        async Task<List<string>> Run(string runId)
        {
            var texts = new List<string>();
            foreach (var prompt in new[] { Emulators.Prompt([3, 3, 3, 3]), Emulators.Prompt([2, 4, 2, 4], hard), Emulators.Prompt([3, 3, 3, 3], round: 2) })
                texts.AddRange((await Emulators.AskAsync(http, prompt, runId)).Select(s => s.Label + "|" + s.Text));
            return texts;
        }
        var first = await Run("3f2b6c1e-0000-4000-8000-00000000000a");
        Assert.Equal(first, await Run("9c0d2e44-0000-4000-8000-00000000000b"));
        Assert.Equal(first.Count, first.Distinct().Count()); // a later request of the run gets other texts
    }

    [Fact]
    public async Task ARun_NeverGetsTheSamePoolTextTwice_AndAnotherRunStartsAfresh()
    {
        // Every pool text acceptable (the policy's filters off), so the whole pool can be handed out.
        await using var server = await Emulators.StartAsync(Emulators.PermissivePolicy);
        using var http = Emulators.Http(server);
        var seen = new List<string>();
        for (var call = 0; call < 4; call++) // the demo pool has 48 texts per class
            seen.AddRange((await Emulators.AskAsync(http, Emulators.Prompt([12, 12, 12, 12], round: call + 1), "run-once")).Select(s => s.Text));
        Assert.Equal(192, seen.Count);
        Assert.Equal(192, seen.Distinct().Count());

        var exhausted = await Emulators.AskAsync(http, Emulators.Prompt([2, 2, 2, 2], round: 5), "run-once");
        Assert.Empty(exhausted); // pool used up: a shorter (here empty) reply, never a repeat
        Assert.Equal(8, (await Emulators.AskAsync(http, Emulators.Prompt([2, 2, 2, 2]), "run-other")).Count);
    }

    [Fact]
    public async Task TheRunIdHeader_KeysTheRun_WhenAClientCannotSetUser()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = Emulators.Body(Emulators.Prompt([1, 1, 1, 1]), user: "ignored") };
        request.Headers.Add(ChatCompletionsEndpoints.RunIdHeader, "run-from-header");
        using var response = await http.SendAsync(request);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(4, server.Engine.UsedCount("run-from-header"));
        Assert.Equal(0, server.Engine.UsedCount("ignored"));
    }

    [Fact]
    public async Task ValidationAndTestTexts_AreNeverReturned_EvenWhenThePoolHoldsThem()
    {
        var dir = Directory.CreateTempSubdirectory("pgkd-emulator-");
        try
        {
            // A leaky pool: the demo pool plus every validation and test text.
            var leaky = Path.Combine(dir.FullName, "pool.jsonl");
            File.WriteAllLines(leaky, new[] { "pool.jsonl", "seed_val.jsonl", "test.jsonl" }.SelectMany(f => File.ReadAllLines(Emulators.DemoFile(f))));
            await using var server = await Emulators.StartAsync(
                ("Emulator:PoolPath", leaky),
                ("Emulator:ExcludePaths:0", Emulators.DemoFile("seed_val.jsonl")),
                ("Emulator:ExcludePaths:1", Emulators.DemoFile("test.jsonl")),
                Emulators.PermissivePolicy[0], Emulators.PermissivePolicy[1]);
            Assert.Equal(32 + 48, server.Engine.Pool.ExcludedCount);
            using var http = Emulators.Http(server);

            var heldOut = Emulators.Read("seed_val.jsonl").TextHashes();
            heldOut.UnionWith(Emulators.Read("test.jsonl").TextHashes());
            var hard = Emulators.Read("seed_val.jsonl").Examples.Take(4).Select(e => new HardNegative(e.Text, e.Label, "World", 0.95)).ToArray();
            var returned = new List<LabeledExample>();
            for (var i = 0; i < 3; i++)
                returned.AddRange(await Emulators.AskAsync(http, Emulators.Prompt([30, 30, 30, 30], hard, round: i + 1), "run-leak"));
            Assert.Equal(192, returned.Count);
            Assert.DoesNotContain(returned, s => heldOut.Contains(TextHash.Of(s.Text)));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task TextsShownInThePrompt_AreNotHandedBack_EvenWithoutExcludeFiles()
    {
        var dir = Directory.CreateTempSubdirectory("pgkd-emulator-");
        try
        {
            var val = Emulators.Read("seed_val.jsonl").Examples.Where(e => e.Label == "Sports").Take(3).ToArray();
            var pool = Path.Combine(dir.FullName, "pool.jsonl");
            File.WriteAllLines(pool, File.ReadAllLines(Emulators.DemoFile("pool.jsonl")).Concat(
                val.Select(e => System.Text.Json.JsonSerializer.Serialize(new { text = e.Text, label = e.Label }))));
            await using var server = await Emulators.StartAsync(("Emulator:PoolPath", pool));
            using var http = Emulators.Http(server);
            var hard = val.Select(e => new HardNegative(e.Text, "Sports", "Business", 0.9)).ToArray();
            var samples = await Emulators.AskAsync(http, Emulators.Prompt([0, 6, 0, 0], hard), "run-shown");
            Assert.Equal(6, samples.Count);
            Assert.DoesNotContain(samples, s => val.Any(v => v.Text == s.Text)); // cosine 1.0 to itself, yet excluded
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task SameSeedSameCalls_SameReplies_OtherSeedOtherReplies()
    {
        async Task<List<string>> Transcript(string seed)
        {
            await using var server = await Emulators.StartAsync(("Emulator:Seed", seed), ("Emulator:Faults:LabelNoiseRate", "0.2"));
            using var http = Emulators.Http(server);
            var texts = new List<string>();
            for (var i = 0; i < 3; i++)
                texts.AddRange((await Emulators.AskAsync(http, Emulators.Prompt([3, 3, 3, 3], round: i + 1), "run-det")).Select(s => s.Label + "|" + s.Text));
            return texts;
        }
        var first = await Transcript("11");
        Assert.Equal(first, await Transcript("11"));
        Assert.NotEqual(first, await Transcript("12"));
    }

    [Fact]
    public async Task AFreeFormPrompt_WithoutGuidance_GetsTheAskedNumberSpreadOverThePoolLabels()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        using var response = await http.PostAsync("v1/chat/completions",
            Emulators.Body([("user", "Write 8 new examples of short news texts as JSON.")]));
        var content = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync())
            .RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString();
        var parsed = Pgkd.Core.Teacher.TeacherReplyParser.Parse(content, new Pgkd.Core.Teacher.TeacherReplyContext { Labels = Emulators.Labels });
        Assert.Equal([2, 2, 2, 2], new Dataset(parsed.Accepted).CountByLabel(Emulators.Labels));
    }
}
