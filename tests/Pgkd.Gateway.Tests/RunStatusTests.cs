using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Pgkd.Core.Data;
using Pgkd.Core.Run;
using Pgkd.Storage;

namespace Pgkd.Gateway.Tests;

/// <summary>
/// GET /v1/runs/{id} answers the run manifest: issue 8 point 2 wants the teacher's faults counted there, per round
/// and for the run (retries by cause, repaired and unusable replies, rejected samples by reason).
/// </summary>
public sealed class RunStatusTests
{
    // What the gateway's ConfigureHttpJsonOptions gives GET /v1/runs/{id}.
    private static readonly JsonSerializerOptions Http = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private static RunManifest Manifest() => new()
    {
        RunId = Guid.Parse("11111111-2222-3333-4444-555555555555"), CreatedAt = DateTimeOffset.UnixEpoch,
        Labels = [new LabelDefinition("World"), new LabelDefinition("Sports")], Configuration = RunConfiguration.Default,
        SeedTrain = new StoredDataset("t", 10, "h"), SeedValidation = new StoredDataset("v", 10, "h"),
        Rounds =
        [
            new RoundRecord(0),
            new RoundRecord(1)
            {
                Requested = 64, Accepted = 60, TeacherCalls = 6, RepairedReplies = 1, UnusableReplies = 0,
                RejectedByReason = new Dictionary<string, int> { ["UnknownLabel"] = 3, ["HeldOutLeakage"] = 1 },
                TeacherRetriesByCause = new Dictionary<string, int> { ["429"] = 2, ["5xx"] = 1 },
            },
            new RoundRecord(2)
            {
                Requested = 64, Accepted = 48, TeacherCalls = 7, RepairedReplies = 1, UnusableReplies = 1,
                RejectedByReason = new Dictionary<string, int> { ["UnknownLabel"] = 1 },
                TeacherRetriesByCause = new Dictionary<string, int> { ["429"] = 1, ["timeout"] = 2 },
            },
        ],
    };

    [Fact]
    public void The_status_counts_teacher_faults_per_round_and_for_the_run()
    {
        var json = JsonSerializer.SerializeToNode(Manifest(), Http)!;

        var round1 = json["rounds"]![1]!;
        Assert.Equal(6, (int)round1["teacherCalls"]!);
        Assert.Equal(2, (int)round1["teacherRetriesByCause"]!["429"]!);
        Assert.Equal(1, (int)round1["repairedReplies"]!);
        Assert.Equal(3, (int)round1["rejectedByReason"]!["UnknownLabel"]!);

        Assert.Equal("""{"429":3,"5xx":1,"timeout":2}""", json["teacherRetriesByCause"]!.ToJsonString());
        Assert.Equal("""{"HeldOutLeakage":1,"UnknownLabel":4}""", json["rejectedByReason"]!.ToJsonString());
        Assert.Equal(2, (int)json["repairedReplies"]!);
        Assert.Equal(1, (int)json["unusableReplies"]!);
    }

    [Fact]
    public void A_manifest_stored_before_the_counts_existed_reads_with_empty_counts_and_the_totals_round_trip()
    {
        var stored = JsonSerializer.SerializeToNode(Manifest(), RunStore.Json)!.AsObject();
        foreach (var round in stored["rounds"]!.AsArray().Select(r => r!.AsObject()))
            foreach (var field in new[] { "teacherCalls", "teacherRetriesByCause", "repairedReplies", "unusableReplies", "generationStopReason" })
                round.Remove(field);

        var old = stored.Deserialize<RunManifest>(RunStore.Json)!;
        Assert.Empty(old.TeacherRetriesByCause);
        Assert.Equal(0, old.RepairedReplies);
        Assert.Equal(4, old.RejectedByReason["UnknownLabel"]);

        // The totals are derived: writing them into the stored manifest and reading it back changes nothing.
        var back = JsonSerializer.Deserialize<RunManifest>(JsonSerializer.Serialize(Manifest(), RunStore.Json), RunStore.Json)!;
        Assert.Equal(Manifest().TeacherRetriesByCause, back.TeacherRetriesByCause);
        Assert.Equal(2, back.Round(2).TeacherRetriesByCause["timeout"]);
    }
}
