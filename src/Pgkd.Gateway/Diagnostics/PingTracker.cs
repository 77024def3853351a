using System.Collections.Concurrent;
using System.Threading.Channels;
using MassTransit;
using Pgkd.Contracts;

namespace Pgkd.Gateway.Diagnostics;

/// <summary>Routes each <see cref="Pong"/> to the request that sent the matching <see cref="Ping"/>.</summary>
public sealed class PingTracker
{
    private readonly ConcurrentDictionary<Guid, Channel<Pong>> _pending = new();

    public PendingPing Start(Guid pingId)
    {
        var channel = Channel.CreateUnbounded<Pong>();
        _pending[pingId] = channel;
        return new PendingPing(pingId, channel.Reader, () => _pending.TryRemove(pingId, out _));
    }

    /// <summary>Returns false for a pong nobody waits for any more (late, or for another gateway replica's ping).</summary>
    public bool Deliver(Pong pong) => _pending.TryGetValue(pong.PingId, out var channel) && channel.Writer.TryWrite(pong);
}

public sealed class PendingPing(Guid pingId, ChannelReader<Pong> answers, Action release) : IDisposable
{
    public Guid PingId { get; } = pingId;

    /// <summary>Collects answers until every expected service answered or the timeout passed; the first answer per service counts.</summary>
    public async Task<IReadOnlyDictionary<string, Pong>> CollectAsync(IReadOnlyCollection<string> expected, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var received = new Dictionary<string, Pong>(StringComparer.OrdinalIgnoreCase);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            while (!expected.All(received.ContainsKey))
            {
                var pong = await answers.ReadAsync(deadline.Token);
                received.TryAdd(pong.Service, pong);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Timed out: report what arrived; the caller names the services that stayed silent.
        }
        return received;
    }

    public void Dispose() => release();
}

/// <summary>Hands pongs to the <see cref="PingTracker"/>.</summary>
public sealed class PongConsumer(PingTracker tracker) : IConsumer<Pong>
{
    public Task Consume(ConsumeContext<Pong> context)
    {
        tracker.Deliver(context.Message);
        return Task.CompletedTask;
    }
}

public static class PingCollectorRegistration
{
    /// <summary>
    /// Pongs go to a temporary queue of this gateway instance: with several replicas, each must see the answers
    /// to its own pings rather than compete for them.
    /// </summary>
    public static IBusRegistrationConfigurator AddPingCollector(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<PongConsumer>().Endpoint(e =>
        {
            e.Name = $"{ServiceNames.Gateway}-pong-{Guid.NewGuid():N}";
            e.Temporary = true;
        });
        return bus;
    }
}
