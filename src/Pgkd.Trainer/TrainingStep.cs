using Pgkd.Core.Run;
using Pgkd.Storage;
using Pgkd.Student;

namespace Pgkd.Trainer;

/// <summary>
/// The trainer's step, without the broker or blob storage around it: how a run's student settings train one round with
/// <see cref="StudentTrainer"/>. <see cref="TrainRoundConsumer"/> is a thin adapter around it, and the benchmark's quality
/// and int8 sections train through the same options.
/// </summary>
public static class TrainingStep
{
    public static StudentTrainingOptions Options(StudentSettings student, RunConfiguration config, int classes, int round, int threads, string device) => new()
    {
        Mode = student.IsHead ? StudentTrainingMode.Head : StudentTrainingMode.Full,
        Epochs = student.EpochCapFor(round),
        ValidationPatience = student.StopsWithinRound ? student.ValidationPatience!.Value : 0,
        BatchSampling = student.BalancesClasses ? BatchSampling.ClassBalanced : BatchSampling.Shuffled,
        MinSteps = student.MinimumSteps(classes),
        HeadStart = student.StartsHeadAtCentroids ? HeadStart.ClassCentroids : HeadStart.Random,
        LearningRate = student.Rate,
        MaxLength = student.MaxLength,
        BatchSize = student.BatchSize,
        Seed = config.SeedForRound(round),
        Threads = threads,
        Device = device,
    };
}
