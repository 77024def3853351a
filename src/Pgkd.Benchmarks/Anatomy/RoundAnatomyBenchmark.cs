using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Pgkd.Benchmarks.Live;
using Pgkd.Contracts;
using static Pgkd.Benchmarks.Live.MachineInfo;

namespace Pgkd.Benchmarks.Anatomy;

/// <summary>
/// Issue 7 item 3: where a real round's wall time goes. Real runs through the AppHost (gateway API, RabbitMQ, Azurite,
/// every service; <see cref="LiveSystem"/>), one per student mode; per round, from the round's trace in the dashboard's
/// telemetry API and the figures the services store in blob storage:
/// teacher = the generator's <c>generations/round-r.json</c> TeacherSeconds (the teacher calls, retries and reply checks),
/// training = the trainer's <c>training.json</c> TrainingSeconds (TorchSharp training and the ONNX export),
/// evaluation = the evaluator's <c>pgkd.evaluate</c> span less the blob calls inside it (ONNX session, tokenizing, scoring, mining),
/// everything else = the round's wall time less those three: broker hops and queueing, blob reads and writes, serialization,
/// the orchestrator's manifest updates. A round's wall time spans its trace: from the orchestrator's <c>pgkd.round</c>
/// span to the end of the last span (the orchestrator's handling of the validation result, which starts the next round).
/// </summary>
public static class RoundAnatomyBenchmark
{
    public static async Task<string> RunAsync(BenchmarkOptions options, CancellationToken cancellationToken)
    {
        var loadAtStart = LoadAverage();
        var text = new StringBuilder();
        text.AppendLine("## Round anatomy");
        text.AppendLine();
        try
        {
            var system = await LiveSystem.AcquireAsync(options, cancellationToken);
            var runs = await system.RunsAsync(options, cancellationToken);
            var analyses = new List<(LiveRun Run, IReadOnlyList<RoundTimes> Rounds)>();
            foreach (var run in runs)
                analyses.Add((run, await AnalyseAsync(system, run, cancellationToken)));

            // The runs may have been made earlier in this process (by the speed section): the load that matters is theirs.
            text.AppendLine(Line(system.RunsLoad.AtStart, system.RunsLoad.AtEnd).Replace("load average", "load average during the runs", StringComparison.Ordinal));
            text.AppendLine($"Options: dataset `{Path.GetFileName(options.DataDirectory)}` (seed_train + seed_val, no test set), " +
                            $"{LiveSystem.AnatomyRounds(options)} teacher rounds x {options.SamplesPerRound} samples after round 0, seed 1, " +
                            $"modes {string.Join(", ", options.Modes)} (full: {options.FullEpochsPerRound} epoch(s) a round; head: the gateway's default epochs), " +
                            $"{options.Threads} threads for training, evaluation and serving; teacher: {(system.RealTeacher ? "the configured one (--teacher)" : "the teacher emulator (answers from pool.jsonl, no network latency)")}. " +
                            $"The real AppHost (RabbitMQ, Azurite, every service) was started by the benchmark ({system.StartTime.TotalSeconds:F0} s to healthy).");
            text.AppendLine();
            foreach (var (run, rounds) in analyses)
            {
                text.AppendLine($"### {run.Mode} mode (run `{run.RunId}`, {run.Elapsed.TotalSeconds:F0} s = {run.Elapsed.TotalMinutes:F1} min from POST to Completed)");
                text.AppendLine();
                var rows = rounds.Select(r => Row(r.Round.ToString(CultureInfo.InvariantCulture), r)).ToList();
                var total = new RoundTimes(-1, rounds.Sum(r => r.Wall), rounds.Sum(r => r.Teacher), rounds.Sum(r => r.Training),
                    rounds.Sum(r => r.Evaluation), rounds.Sum(r => r.Blob), rounds.Sum(r => r.TrainingExamples), rounds.Sum(r => r.Idle));
                rows.Add(Row("**all**", total));
                text.Append(Table(["round", "wall s", "teacher", "training", "evaluation", "everything else", "of which blob I/O", "of which between spans", "training examples"], rows));
                text.AppendLine();
                var elseShare = total.Else / total.Wall;
                text.AppendLine($"Everything else is {elseShare:P1} of the run's round time (target <= 5%): " +
                                (elseShare <= 0.05 ? "met." : $"missed by {(elseShare - 0.05) * total.Wall:F1} s over {rounds.Count} rounds ({total.Else / rounds.Count:F2} s a round).") +
                                $" Not in any round: the gateway loading the promoted model after the run completed, {rounds.Sum(r => r.Promotion):F1} s.");
                text.AppendLine();
            }
            text.AppendLine("Method: each round is one trace (a `pgkd round <r> · run <id>` root, the generator, trainer and evaluator spans and the messages between them), read from the dashboard's telemetry API; wall = last span end - first span start. " +
                            "Teacher and training seconds are the services' own clocks as stored in blob storage (`generations/round-r.json` TeacherSeconds, `checkpoints/round-r/training.json` TrainingSeconds); " +
                            "evaluation = the `pgkd.evaluate` span less the Azure blob spans nested in it. Everything else = wall - teacher - training - evaluation: " +
                            "RabbitMQ hops and queueing, blob reads and writes (\"of which blob I/O\": the union of the round's Azure SDK spans), JSON, manifest updates, downloading the previous checkpoint; " +
                            "\"of which between spans\": wall time covered by no span of the round's trace (broker hops, dispatch, waiting for a core). " +
                            "The gateway's spans (it loads the promoted model when RunCompleted arrives, in the last round's trace) are left out of the rounds and reported after the table. " +
                            "Each service warms up at start (JSON contracts, the teacher tokenizer: `AddStartupWarmUp`; MassTransit's serializer on every contract, each consumer built once, every publish endpoint: `BusWarmUp`), " +
                            "and the gateway pings the pipeline until every service has answered once (`PipelineCheckAtStart`), so round 0 and 1 do not carry first-use costs. " +
                            "Shares are of the round's wall time. The target (<= 5%) is about a full AG News run (6 rounds x 200 samples, full fine-tune), whose rounds are much longer than a head-mode round; the fixed per-round cost is what to compare.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await LiveSystem.ReleaseAsync(options, "anatomy", force: true);
            throw;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"[bench] anatomy failed: {e}");
            text.AppendLine(Line(loadAtStart));
            text.AppendLine();
            text.AppendLine($"Not measured: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            await LiveSystem.ReleaseAsync(options, "anatomy", force: true);
            return text.ToString();
        }
        await LiveSystem.ReleaseAsync(options, "anatomy");
        return text.ToString();

        static IReadOnlyList<string> Row(string name, RoundTimes r) =>
        [
            name, F(r.Wall, "F1"), Part(r.Teacher, r.Wall), Part(r.Training, r.Wall), Part(r.Evaluation, r.Wall), Part(r.Else, r.Wall),
            Part(r.Blob, r.Wall), Part(r.Idle, r.Wall), r.TrainingExamples.ToString(CultureInfo.InvariantCulture),
        ];
        static string Part(double seconds, double wall) => $"{F(seconds, "F1")} s ({F(seconds / wall * 100, "F1")}%)";
    }

    /// <summary><paramref name="Idle"/>: seconds of the round's wall time covered by no span of its trace (broker hops, dispatch, queueing).</summary>
    /// <paramref name="Promotion"/>: the gateway's loading of the promoted model, in the last round's trace but not counted in it.
    public sealed record RoundTimes(int Round, double Wall, double Teacher, double Training, double Evaluation, double Blob, int TrainingExamples, double Idle = 0,
        double Promotion = 0)
    {
        public double Else => Wall - Teacher - Training - Evaluation;
    }

    private static async Task<IReadOnlyList<RoundTimes>> AnalyseAsync(LiveSystem system, LiveRun run, CancellationToken cancellationToken)
    {
        var runId = run.RunId.ToString();
        var expected = run.Rounds + 1;
        IReadOnlyList<DashboardSpan> spans = [];
        // Telemetry is exported in batches: wait until every round's trace holds each of its steps.
        for (var attempt = 0; attempt < 60; attempt++)
        {
            using var response = await system.Dashboard.GetAsync(
                "/api/telemetry/spans?limit=100000&resource=orchestrator&resource=gateway&resource=generator&resource=trainer&resource=evaluator", cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
                throw new InvalidOperationException($"the dashboard's telemetry API answered {(int)response.StatusCode}: {body[..Math.Min(200, body.Length)]}");
            spans = DashboardSpan.Parse(JsonNode.Parse(body)?.AsObject());
            var roots = spans.Where(s => s.IsRoundOf(runId)).ToList();
            // Every step's span, not only the last: one exported late would count its step as time between spans.
            bool Complete(DashboardSpan root) => spans.Any(s => s.TraceId == root.TraceId && s.Name == "pgkd.evaluate")
                && spans.Any(s => s.TraceId == root.TraceId && s.Name == "pgkd.train")
                && (root.Attribute("pgkd.round") == "0" || spans.Any(s => s.TraceId == root.TraceId && s.Name == "pgkd.generate"));
            if (roots.Count == expected && roots.All(Complete)) break;
            await Task.Delay(1000, cancellationToken);
        }
        var result = new List<RoundTimes>();
        foreach (var root in spans.Where(s => s.IsRoundOf(runId)).OrderBy(s => s.Start))
        {
            var round = int.Parse(root.Attribute("pgkd.round")!, CultureInfo.InvariantCulture);
            // The gateway loading the promoted model follows RunCompleted inside the last round's trace: that is serving the
            // run's result, once per run, not a round's work; it is reported on its own line.
            var whole = spans.Where(s => s.TraceId == root.TraceId).ToList();
            var trace = whole.Where(s => s.Service != "gateway").ToList();
            var promotion = Union(whole.Where(s => s.Service == "gateway"));
            var wall = (trace.Max(s => s.End) - trace.Min(s => s.Start)).TotalSeconds;
            var blobSpans = trace.Where(s => s.Scope.StartsWith("Azure.", StringComparison.Ordinal)).ToList();
            var evaluate = trace.Where(s => s.Name == "pgkd.evaluate").ToList();
            var evaluation = evaluate.Sum(e => e.Duration.TotalSeconds - Union(blobSpans.Where(b => b.Start >= e.Start && b.End <= e.End)));
            var generation = round == 0 ? null : await system.ReadJsonAsync($"{runId}/generations/round-{round}.json", cancellationToken);
            var training = await system.ReadJsonAsync($"{runId}/checkpoints/round-{round}/training.json", cancellationToken);
            result.Add(new RoundTimes(round, wall,
                Number(generation, "teacherSeconds"),
                Number(training, "trainingSeconds"),
                evaluation,
                Union(blobSpans),
                training?["trainingExamples"] is { } n ? (int)n : 0,
                wall - Union(trace),
                promotion));
            if (Environment.GetEnvironmentVariable("PGKD_ANATOMY_SPANS") is { Length: > 0 } dump)
            {
                // A timeline of the round for finding where "everything else" goes: offset, duration, service, span.
                var t0 = trace.Min(s => s.Start);
                File.AppendAllLines(dump, [$"# run {runId} round {round}, wall {wall:F3} s", .. trace.OrderBy(s => s.Start).Select(s =>
                    $"{(s.Start - t0).TotalMilliseconds,8:F1} {s.Duration.TotalMilliseconds,8:F1} {s.Service,-12} {s.Name}")]);
            }
        }
        if (result.Count != expected)
            throw new InvalidOperationException($"run {runId}: found the traces of {result.Count} of {expected} rounds in the dashboard");
        return result;

        static double Number(JsonObject? o, string name) =>
            o is null ? 0 : (o[name] ?? o[char.ToUpperInvariant(name[0]) + name[1..]]) is { } v ? (double)v : 0;
    }

    /// <summary>Seconds covered by at least one of the spans (nested and overlapping spans count once).</summary>
    private static double Union(IEnumerable<DashboardSpan> spans)
    {
        double total = 0;
        DateTime? start = null, end = null;
        foreach (var s in spans.OrderBy(s => s.Start))
        {
            if (end is null || s.Start > end)
            {
                if (end is not null) total += (end.Value - start!.Value).TotalSeconds;
                start = s.Start; end = s.End;
            }
            else if (s.End > end) end = s.End;
        }
        if (end is not null) total += (end.Value - start!.Value).TotalSeconds;
        return total;
    }
}
