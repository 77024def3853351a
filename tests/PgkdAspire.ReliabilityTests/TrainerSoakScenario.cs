using System.Globalization;
using Pgkd.Core.Data;
using Pgkd.Student;
using Xunit;
using Xunit.Abstractions;

namespace PgkdAspire.ReliabilityTests;

/// <summary>
/// Issue 19.1 without the services: the trainer's job in process, full mode, again and again (round 0 on 64 AG News texts,
/// then a round continuing from its checkpoint on 96, max length 128), each training on a thread of its own as the
/// service's thread pool would run it. RSS, GC heap after each run; <c>PGKD_NATIVE_MEMORY=default</c> shows glibc's own
/// behaviour for comparison (docs/reliability.md §7). Runs: <c>PGKD_TRAINER_SOAK_RUNS</c>, default 6.
/// </summary>
public sealed class TrainerSoakScenario(ITestOutputHelper output)
{
    private static int Runs => int.TryParse(Environment.GetEnvironmentVariable("PGKD_TRAINER_SOAK_RUNS"), out var n) && n >= 2 ? n : 6;

    [Fact]
    public void Full_mode_trainings_in_one_process_keep_their_memory_flat()
    {
        var folder = AgNews.Folder ?? throw new InvalidOperationException($"AG News data not found at {AgNews.ExpectedFolder}");
        var labels = LabelSet.FromLines(File.ReadAllText(Path.Combine(folder, "labels.txt")));
        Dataset Read(string name)
        {
            using var stream = File.OpenRead(Path.Combine(folder, name));
            return DatasetReader.ReadJsonl(stream, name, new DatasetReadOptions { Labels = labels });
        }
        var train = Read("seed_train.jsonl").Examples.Take(64).ToList();
        var grown = train.Concat(Read("seed_val.jsonl").Examples.Take(32)).ToList();
        var options = new StudentTrainingOptions { Mode = StudentTrainingMode.Full, Epochs = 1, MaxLength = 128, LearningRate = 5e-5, Threads = 2, Seed = 7 };
        using var trainer = new StudentTrainer();
        var work = Directory.CreateTempSubdirectory("pgkd-trainer-soak-").FullName;
        var rows = new List<string> { "| run | RSS MiB | GC heap MiB |", "|---|---|---|" };
        var rss = new List<long>();
        try
        {
            for (var run = 1; run <= Runs; run++)
            {
                var dir = Path.Combine(work, $"run-{run}");
                var round0 = OnThread(() => trainer.Train(options, train, labels, Path.Combine(dir, "round-0")));
                OnThread(() => trainer.Train(options with { Seed = 8 }, grown, labels, Path.Combine(dir, "round-1"), StudentCheckpoint.Load(round0.Directory)));
                Directory.Delete(dir, recursive: true);
                rss.Add(ProcessMemory.ResidentBytes() >> 20);
                rows.Add($"| {run} | {rss[^1]} | {(GC.GetTotalMemory(false) >> 20).ToString(CultureInfo.InvariantCulture)} |");
                output.WriteLine(rows[^1]);
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            Results.Write($"Trainer soak in process (PGKD_NATIVE_MEMORY={Environment.GetEnvironmentVariable("PGKD_NATIVE_MEMORY") ?? "(unset)"})", rows);
        }
        Assert.True(rss[^1] <= 1.25 * rss[0], $"RSS {rss[0]} MiB after the first run, {rss[^1]} MiB after the last");
    }

    private static T OnThread<T>(Func<T> job)
    {
        T result = default!;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try { result = job(); }
            catch (Exception e) { failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e); }
        });
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }
}
