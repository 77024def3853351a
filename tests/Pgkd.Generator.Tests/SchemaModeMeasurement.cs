using Pgkd.Core.Teacher;
using Pgkd.Generator.Shards;
using Pgkd.Generator.Teacher;
using Xunit.Abstractions;

namespace Pgkd.Generator.Tests;

/// <summary>
/// Issue 22 point 1, measured: the faulty-teacher scenario's label faults (docs/reliability.md: label noise 0.2, labels
/// outside the set 0.1, with 429s, 500s and cut-off JSON) over 3 rounds of 64 samples, once asked in json_object and
/// once in json_schema. Same emulator seed both times; the figures go to the test output.
/// </summary>
public sealed class SchemaModeMeasurement(ITestOutputHelper output)
{
    [Fact]
    public async Task UnknownLabelRejects_InTheFaultyTeacherScenario_WithAndWithoutSchemaMode()
    {
        var figures = new Dictionary<TeacherResponseFormat, (int Unknown, int Accepted, int Requested, string? Mode)>();
        foreach (var format in new[] { TeacherResponseFormat.JsonObject, TeacherResponseFormat.Auto })
        {
            await using var server = await TestTeacher.StartEmulatorAsync(
                ("Emulator:Faults:LabelNoiseRate", "0.2"), ("Emulator:Faults:UnknownLabelRate", "0.1"),
                ("Emulator:Faults:TooManyRequestsRate", "0.25"), ("Emulator:Faults:RetryAfterMs", "5"),
                ("Emulator:Faults:ServerErrorRate", "0.15"), ("Emulator:Faults:MalformedReplyRate", "0.2"));
            var client = TestTeacher.Client(server, options: TestTeacher.FastOptions(o => { o.ResponseFormat = format; o.MaxRetries = 12; }));
            var generator = new RoundShardGenerator(client, new RoundShardOptions { SamplesPerRequest = 16, MaxParallelRequests = 2 });
            int unknown = 0, accepted = 0, requested = 0;
            string? mode = null;
            for (var round = 1; round <= 3; round++)
            {
                var request = new RoundShardRequest("run-measure", round, TestTeacher.RoundInput([16, 16, 16, 16], round), TestTeacher.ReplyContext());
                var shard = await generator.GenerateAsync(request, new TeacherUsageLedger(TeacherBudget.Unlimited));
                unknown += shard.Rejected.GetValueOrDefault(RejectReason.UnknownLabel);
                accepted += shard.Examples.Count;
                requested += shard.Requested.Sum();
                mode = shard.ResponseMode;
            }
            figures[format] = (unknown, accepted, requested, mode);
            output.WriteLine($"{mode}: {unknown} UnknownLabel rejects, {accepted} of {requested} samples accepted");
        }
        Assert.Equal("json_object", figures[TeacherResponseFormat.JsonObject].Mode);
        Assert.Equal("json_schema", figures[TeacherResponseFormat.Auto].Mode);
        Assert.True(figures[TeacherResponseFormat.JsonObject].Unknown > 0);
        Assert.Equal(0, figures[TeacherResponseFormat.Auto].Unknown);
    }
}
