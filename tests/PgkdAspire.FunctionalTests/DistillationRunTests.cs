using Pgkd.Benchmarks.Live;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Pgkd.Contracts;

namespace PgkdAspire.FunctionalTests;

/// <summary>A whole distillation run through the real AppHost: the round flow, the blob layout, one trace per round, serving.</summary>
[Collection(DistillationCollection.Name)]
public sealed class DistillationRunTests(DistillationRunFixture run, Xunit.Abstractions.ITestOutputHelper output)
{
    private string RunPrefix => $"{run.RunId:D}/";

    [Fact]
    public void The_run_completes_round_by_round_and_scores_the_best_checkpoint_once_on_test()
    {
        Assert.True((string?)run.Run["status"] == "Completed", run.Run.ToJsonString());
        var rounds = run.Run["rounds"]!.AsArray();
        Assert.Equal([0, 1, 2], rounds.Select(r => (int)r!["round"]!));
        foreach (var round in rounds)
        {
            Assert.InRange((double)round!["accuracy"]!, 0.0, 1.0);
            Assert.True((double)round["validationLoss"]! > 0);
            Assert.EndsWith($"/checkpoints/round-{(int)round["round"]!}/", (string)round["checkpointFolder"]!);
            // The default run splits validation: the selection part judges each round, apart from the feedback part.
            Assert.InRange((double)round["selectionAccuracy"]!, 0.0, 1.0);
            Assert.True((double)round["selectionLoss"]! > 0);
        }
        var feedbackCount = (int)run.Run["feedbackValidation"]!["count"]!;
        var selectionCount = (int)run.Run["selectionValidation"]!["count"]!;
        Assert.Equal((int)run.Run["seedValidation"]!["count"]!, feedbackCount + selectionCount);
        Assert.True(feedbackCount > 0 && selectionCount > 0);
        // Round 0 trains on the seed set only; each later round asked the teacher for the configured 16 samples.
        Assert.Null(rounds[0]!["shardBlob"]);
        foreach (var round in rounds.Skip(1))
        {
            Assert.Equal(16, (int)round!["requested"]!);
            Assert.InRange((int)round["accepted"]!, 1, 16);
            Assert.True((long)round["teacherTokens"]! > 0);
        }
        var best = (int)run.Run["bestRound"]!;
        Assert.InRange(best, 0, 2);
        Assert.Contains("StopMaxRounds", (string)run.Run["stopReason"]!);
        var test = run.Run["testReport"]!;
        Assert.Equal(File.ReadAllLines(DemoRun.Data("test.jsonl")).Count(l => l.Trim().Length > 0), (int)test["count"]!);
        Assert.InRange((double)test["accuracy"]!, 0.0, 1.0);
    }

    [Fact]
    public async Task Manifest_data_shards_and_checkpoints_are_stored_in_the_documented_layout()
    {
        var blobs = new BlobServiceClient(await run.App.GetConnectionStringAsync(ServiceNames.Blobs)).GetBlobContainerClient("runs");
        var names = new HashSet<string>();
        await foreach (var blob in blobs.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, RunPrefix, default)) names.Add(blob.Name[RunPrefix.Length..]);

        string[] expected =
        [
            "manifest.json", "report.json", "data/seed-train.jsonl", "data/seed-val.jsonl", "data/test.jsonl",
            "data/feedback-val.jsonl", "data/selection-val.jsonl", "data/pool.jsonl",
            "data/round-1.jsonl", "data/round-2.jsonl", "evaluations/round-0-validation.json", "evaluations/round-2-validation.json",
        ];
        foreach (var name in expected) Assert.Contains(name, names);
        // Head mode over the pretrained encoder: the checkpoint holds the head only (the gateway composes model.onnx from it).
        for (var r = 0; r <= 2; r++)
        {
            foreach (var file in new[] { "head.onnx", "metadata.json", "training.json" })
                Assert.Contains($"checkpoints/round-{r}/{file}", names);
            foreach (var file in new[] { "model.onnx", "model.int8.onnx", "student.pt" })
                Assert.DoesNotContain($"checkpoints/round-{r}/{file}", names);
        }
        Assert.Contains($"evaluations/round-{(int)run.Run["bestRound"]!}-test.json", names);

        // The teacher's samples never repeat the seed data and never leak validation or test texts.
        async Task<HashSet<string>> Texts(string name)
        {
            var content = (await blobs.GetBlobClient(RunPrefix + name).DownloadContentAsync()).Value.Content.ToString();
            return content.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("text").GetString()!).ToHashSet();
        }
        var heldOut = (await Texts("data/seed-val.jsonl")).Concat(await Texts("data/test.jsonl")).ToHashSet();
        var seen = await Texts("data/seed-train.jsonl");
        foreach (var shard in new[] { "data/round-1.jsonl", "data/round-2.jsonl" })
        {
            var texts = await Texts(shard);
            Assert.NotEmpty(texts);
            Assert.Empty(texts.Intersect(heldOut));
            Assert.Empty(texts.Intersect(seen));
            seen.UnionWith(texts);
        }
    }

    [Fact]
    public async Task Each_round_stopped_on_the_feedback_validation_loss_and_stored_its_best_epoch()
    {
        var blobs = new BlobServiceClient(await run.App.GetConnectionStringAsync(ServiceNames.Blobs)).GetBlobContainerClient("runs");
        for (var r = 0; r <= 2; r++)
        {
            var summary = JsonNode.Parse((await blobs.GetBlobClient($"{RunPrefix}checkpoints/round-{r}/training.json").DownloadContentAsync()).Value.Content.ToString())!;
            var epochs = (int)summary["epochs"]!;
            var kept = (int)summary["keptEpoch"]!;
            Assert.InRange(epochs, 1, 30); // the fixture's cap
            Assert.InRange(kept, 1, epochs);
            // Either it ran to the cap or it stopped 3 epochs (the patience) after the one it kept.
            Assert.True(epochs == 30 || epochs - kept == 3, $"round {r}: {summary.ToJsonString()}");
            // The kept epoch's loss as the trainer measured it is the evaluator's on the feedback part: the checkpoint holds that epoch.
            var evaluated = (double)run.Run["rounds"]!.AsArray().Single(x => (int)x!["round"]! == r)!["validationLoss"]!;
            Assert.Equal(evaluated, (double)summary["validationLoss"]!, 2);
        }
    }

    [Fact]
    public void The_forecast_made_before_the_run_bounds_what_every_teacher_round_cost()
    {
        var forecast = run.Run["forecast"]!;
        Assert.Equal("pgkd-teacher", (string?)forecast["model"]);
        Assert.StartsWith("o200k_base", (string?)forecast["tokenizer"]);
        var teacherRounds = run.Run["rounds"]!.AsArray().Where(r => (int)r!["round"]! > 0).ToList();
        Assert.NotEmpty(teacherRounds);
        var log = new List<string>();
        foreach (var actual in teacherRounds)
        {
            var round = (int)actual!["round"]!;
            var most = forecast["rounds"]!.AsArray().Single(r => (int)r!["round"]! == round)!;
            log.Add($"round {round}: calls {actual["teacherCalls"]}/{most["teacherCalls"]}, prompt {actual["teacherPromptTokens"]}/{most["promptTokens"]}, " +
                    $"completion {actual["teacherCompletionTokens"]}/{most["completionTokens"]}, ${actual["teacherCostUsd"]}/{most["costUsd"]}");
            Assert.True((long)actual["teacherPromptTokens"]! > 0, log[^1]); // positive control: the split tokens are recorded
            Assert.True((int)actual["teacherCalls"]! <= (int)most["teacherCalls"]!, log[^1]);
            Assert.True((long)actual["teacherPromptTokens"]! <= (long)most["promptTokens"]!, log[^1]);
            Assert.True((long)actual["teacherCompletionTokens"]! <= (long)most["completionTokens"]!, log[^1]);
            Assert.True((decimal)actual["teacherCostUsd"]! <= (decimal)most["costUsd"]!, log[^1]);
        }
        output.WriteLine(string.Join("\n", log));
    }

    [Fact]
    public async Task Each_round_is_one_trace_holding_the_generator_trainer_and_evaluator_spans()
    {
        using var dashboard = run.DashboardApi();
        // Telemetry is exported in batches; give the last round's spans a few seconds to arrive.
        IReadOnlyList<DashboardSpan> spans = [];
        for (var attempt = 0; attempt < 30; attempt++)
        {
            using var response = await dashboard.GetAsync("/api/telemetry/spans?limit=10000&resource=orchestrator&resource=gateway&resource=generator&resource=trainer&resource=evaluator");
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"dashboard {run.DashboardUrl} answered {(int)response.StatusCode}: {body}");
            spans = DashboardSpan.Parse(JsonNode.Parse(body)!.AsObject());
            var roundTraces = spans.Where(s => s.IsRoundOf(run.RunId.ToString())).ToList();
            if (roundTraces.Count == 3 && roundTraces.All(r => spans.Any(s => s.TraceId == r.TraceId && s.Name == "pgkd.evaluate"))) break;
            await Task.Delay(1000);
        }

        var rounds = spans.Where(s => s.IsRoundOf(run.RunId.ToString()))
            .ToDictionary(s => int.Parse(s.Attribute("pgkd.round")!), s => s.TraceId);
        Assert.Equal([0, 1, 2], rounds.Keys.Order());
        Assert.Equal(3, rounds.Values.Distinct().Count());
        foreach (var (round, traceId) in rounds)
        {
            var inTrace = spans.Where(s => s.TraceId == traceId).ToList();
            var services = inTrace.Select(s => s.Service).ToHashSet();
            Assert.Contains(ServiceNames.Trainer, services);
            Assert.Contains(ServiceNames.Evaluator, services);
            Assert.Contains(ServiceNames.Orchestrator, services);
            Assert.Contains(inTrace, s => s.Name == "pgkd.train" && s.Attribute("pgkd.training.examples_per_second") is not null);
            Assert.Contains(inTrace, s => s.Name == "pgkd.evaluate" && s.Attribute("pgkd.validation.accuracy") is not null
                                          && s.Attribute("pgkd.validation.macro_f1") is not null && s.Attribute("pgkd.validation.loss") is not null);
            if (round > 0)
            {
                Assert.Contains(ServiceNames.Generator, services);
                Assert.Contains(inTrace, s => s.Name == "pgkd.generate" && s.Attribute("pgkd.samples.accepted") is not null
                                              && s.Attribute("pgkd.teacher.tokens") is not null);
            }
        }
    }

    [Fact]
    public async Task The_gateway_classifies_with_the_promoted_model()
    {
        using var response = await run.Gateway.PostAsJsonAsync("/v1/classify",
            new { texts = new[] { "The kettle arrived with a cracked lid", "Please cancel my order, I bought it by mistake" } });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        var result = JsonNode.Parse(body)!;
        Assert.Equal($"{run.RunId:D}/round-{(int)run.Run["bestRound"]!}", (string)result["model"]!);
        var predictions = result["predictions"]!.AsArray();
        Assert.Equal(2, predictions.Count);
        foreach (var prediction in predictions)
        {
            var probabilities = prediction!["probabilities"]!.AsObject();
            Assert.Equal(run.Run["labels"]!.AsArray().Count, probabilities.Count);
            Assert.Equal(1.0, probabilities.Sum(p => (double)p.Value!), 3);
            Assert.Contains((string)prediction["label"]!, probabilities.Select(p => p.Key));
        }

        // GET /v1/models says which graph serves it (Gateway:Inference:Precision).
        var models = (await run.Gateway.GetFromJsonAsync<JsonArray>("/v1/models"))!;
        var served = models.Single(m => (string?)m!["id"] == (string)result["model"]!)!;
        Assert.Contains((string?)served["precision"], new[] { "Fp32", "Int8" });
    }

    [Fact]
    public async Task The_run_API_needs_the_key()
    {
        using var anonymous = run.App.CreateHttpClient(ServiceNames.Gateway);
        using var response = await anonymous.GetAsync($"/v1/runs/{run.RunId}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}
