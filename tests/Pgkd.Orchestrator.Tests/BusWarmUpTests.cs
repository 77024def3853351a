using MassTransit;
using MassTransit.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Pgkd.Contracts;
using Xunit;

namespace Pgkd.Orchestrator.Tests;

/// <summary>The services' start-up bus warm-up (ServiceDefaults/BusWarmUp.cs) covers every contract and consumer, and sends nothing.</summary>
public sealed class BusWarmUpTests
{
    [Fact]
    public void Every_message_of_the_system_is_warmed_up_and_nothing_else()
    {
        Type[] messages = [typeof(Ping), typeof(Pong), typeof(StartRun), typeof(CancelRun), typeof(GenerateRound), typeof(RoundGenerated),
            typeof(TrainRound), typeof(RoundTrained), typeof(EvaluateRound), typeof(RoundEvaluated), typeof(RunCompleted)];
        Assert.Equal(messages.Select(t => t.Name).Order(), BusWarmUp.MessageTypes.Select(t => t.Name).Order());
        BusWarmUp.WarmUpSerializer(); // an uninitialized instance of each, through MassTransit's own JSON options
    }

    [Fact]
    public async Task Consumers_are_built_and_publish_endpoints_resolved_without_a_message_sent()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton(new Script());
        // Built, never called: no storage is reached.
        services.AddSingleton(new Azure.Storage.Blobs.BlobServiceClient("UseDevelopmentStorage=true"));
        services.AddSingleton<Pgkd.Storage.RunStore>();
        services.AddMassTransitTestHarness(bus => bus.AddConsumer<StepServices>());
        await using var provider = services.BuildServiceProvider();
        var harness = provider.GetRequiredService<ITestHarness>();
        await harness.Start();

        Assert.Contains(typeof(StepServices), BusWarmUp.ConsumerTypes(services));
        Assert.Equal(1, BusWarmUp.WarmUpConsumers(provider, services, NullLogger.Instance));
        var bus = provider.GetRequiredService<IBus>();
        Assert.True(bus is IPublishEndpointProvider, $"{bus.GetType().Name} does not give its publish endpoints; the warm-up after start would do nothing");
        await BusWarmUp.WarmUpPublishEndpointsAsync((IPublishEndpointProvider)bus);
        Assert.False(await harness.Published.Any(), "the warm-up published a message");
        Assert.False(await harness.Sent.Any(), "the warm-up sent a message");
    }
}
