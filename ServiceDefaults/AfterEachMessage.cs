using MassTransit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Work that follows every message once it is handled and acknowledged, and its publishes are out (the in-memory outbox
/// sends them when the consumer returns): the next service is already on the round while this one does it. For memory
/// hygiene between jobs (a full GC and malloc_trim, tens of milliseconds) that should not sit between a step and the
/// announcement of its result.
/// </summary>
public static class AfterEachMessageExtensions
{
    public static IBusRegistrationConfigurator AddAfterEachMessage(this IBusRegistrationConfigurator bus, string what, Action action)
    {
        bus.AddReceiveObserver(sp => new AfterEachMessage(what, action, sp.GetRequiredService<ILogger<AfterEachMessage>>()));
        return bus;
    }
}

internal sealed class AfterEachMessage(string what, Action action, ILogger<AfterEachMessage> logger) : IReceiveObserver
{
    public Task PreReceive(ReceiveContext context) => Task.CompletedTask;

    public Task PostReceive(ReceiveContext context) => Run();

    public Task ReceiveFault(ReceiveContext context, Exception exception) => Run();

    public Task PostConsume<T>(ConsumeContext<T> context, TimeSpan duration, string consumerType) where T : class => Task.CompletedTask;

    public Task ConsumeFault<T>(ConsumeContext<T> context, TimeSpan duration, string consumerType, Exception exception) where T : class =>
        Task.CompletedTask;

    private Task Run()
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "After a message: {What} failed", what);
        }
        return Task.CompletedTask;
    }
}
