using MassTransit;
using Pgkd.Contracts;

namespace Pgkd.Gateway.Models;

/// <summary>When a run completes, every gateway instance swaps to its best model (a temporary queue per instance).</summary>
public sealed class ModelSwapper(ModelRegistry registry) : IConsumer<RunCompleted>
{
    public Task Consume(ConsumeContext<RunCompleted> context) => registry.RefreshDefaultAsync(context.CancellationToken);

    public static void Register(IBusRegistrationConfigurator bus) =>
        bus.AddConsumer<ModelSwapper>().Endpoint(e =>
        {
            e.Name = $"gateway-models-{Guid.NewGuid():N}";
            e.Temporary = true;
        });
}
