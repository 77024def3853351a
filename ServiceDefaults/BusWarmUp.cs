using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text.Json;
using MassTransit;
using MassTransit.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pgkd.Contracts;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// The bus's share of a start-up warm-up (see <see cref="StartupWarmUpExtensions"/>): before the bus takes messages,
/// MassTransit's JSON serializer has seen every contract and each consumer has been built once with its dependencies;
/// after it starts, the exchange of every contract has a send endpoint. Without it the first message of each kind a
/// service handles paid 50-120 ms for these (the gaps between the receive, process and step spans of round 0 and of the
/// generator's round 1, Round anatomy). It sends nothing.
/// </summary>
public static class BusWarmUp
{
    /// <summary>Every message of the system: the public sealed records of the contracts assembly.</summary>
    public static IReadOnlyList<Type> MessageTypes { get; } = typeof(StartRun).Assembly.GetExportedTypes()
        .Where(t => t is { IsClass: true, IsSealed: true, IsAbstract: false } && t.GetMethod("<Clone>$") is not null)
        .ToArray();

    /// <summary>Serialize and read back each contract with the options MassTransit's serializer uses.</summary>
    public static void WarmUpSerializer()
    {
        var options = SystemTextJsonMessageSerializer.Options;
        foreach (var type in MessageTypes)
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(RuntimeHelpers.GetUninitializedObject(type), type, options);
            JsonSerializer.Deserialize(json, type, options);
        }
    }

    /// <summary>Build each registered consumer once in a scope: its singletons (stores, clients, models) are created now.</summary>
    public static int WarmUpConsumers(IServiceProvider services, IServiceCollection registrations, ILogger logger)
    {
        using var scope = services.CreateScope();
        var built = 0;
        foreach (var consumer in ConsumerTypes(registrations))
        {
            try
            {
                if (scope.ServiceProvider.GetService(consumer) is not null) built++;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Could not build {Consumer} ahead of its first message", consumer.Name);
            }
        }
        return built;
    }

    public static IReadOnlyList<Type> ConsumerTypes(IServiceCollection registrations) => registrations
        .Select(d => d.ServiceType)
        .Where(t => t is { IsClass: true, IsAbstract: false, IsGenericTypeDefinition: false } && typeof(IConsumer).IsAssignableFrom(t))
        .Distinct()
        .ToArray();

    /// <summary>Resolve the publish endpoint of every contract: the exchange is declared and its send transport cached.</summary>
    public static async Task WarmUpPublishEndpointsAsync(IPublishEndpointProvider provider)
    {
        var get = typeof(IPublishEndpointProvider).GetMethod(nameof(IPublishEndpointProvider.GetPublishSendEndpoint))!;
        foreach (var type in MessageTypes)
            await (Task<ISendEndpoint>)get.MakeGenericMethod(type).Invoke(provider, null)!;
    }
}

/// <summary>Runs before MassTransit's hosted service (registered ahead of it), so no message arrives before it is done.</summary>
internal sealed class BusWarmUpBeforeStart(IServiceProvider services, IServiceCollection registrations, ILogger<BusWarmUpBeforeStart> logger)
    : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            BusWarmUp.WarmUpSerializer();
            var consumers = BusWarmUp.WarmUpConsumers(services, registrations, logger);
            logger.LogInformation("Warmed up the bus ({Messages} contracts, {Consumers} consumers) in {Milliseconds:F0} ms",
                BusWarmUp.MessageTypes.Count, consumers, clock.Elapsed.TotalMilliseconds);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Bus warm-up failed after {Milliseconds:F0} ms; the first message will pay for it", clock.Elapsed.TotalMilliseconds);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// Runs after MassTransit's hosted service, in the background: resolving a publish endpoint waits for the broker
/// connection, and a broker that is down must not hold up the service's start (or its health endpoint).
/// </summary>
internal sealed class BusWarmUpAfterStart(IBus bus, ILogger<BusWarmUpAfterStart> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            if (bus is not IPublishEndpointProvider provider)
            {
                logger.LogWarning("The bus ({Type}) does not expose its publish endpoints; the first publish of each kind will pay for it", bus.GetType().Name);
                return;
            }
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(30));
            await BusWarmUp.WarmUpPublishEndpointsAsync(provider).WaitAsync(timeout.Token);
            logger.LogInformation("Warmed up {Count} publish endpoints in {Milliseconds:F0} ms", BusWarmUp.MessageTypes.Count, clock.Elapsed.TotalMilliseconds);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning(e, "Publish endpoint warm-up failed after {Milliseconds:F0} ms; the first publish will pay for it", clock.Elapsed.TotalMilliseconds);
        }
    }
}
