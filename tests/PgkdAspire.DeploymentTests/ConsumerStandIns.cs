using MassTransit;
using Pgkd.Contracts;

namespace PgkdAspire.DeploymentTests.Consumers;

/// <summary>Stand-ins with the consumers' names: MassTransit's formatter names an endpoint by the consumer type's name alone.</summary>
internal sealed class GenerateRoundConsumer : IConsumer<GenerateRound>
{
    public Task Consume(ConsumeContext<GenerateRound> context) => Task.CompletedTask;
}

internal sealed class TrainRoundConsumer : IConsumer<TrainRound>
{
    public Task Consume(ConsumeContext<TrainRound> context) => Task.CompletedTask;
}

internal sealed class EvaluateRoundConsumer : IConsumer<EvaluateRound>
{
    public Task Consume(ConsumeContext<EvaluateRound> context) => Task.CompletedTask;
}
