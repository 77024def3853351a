using MassTransit;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pgkd.Contracts;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// MassTransit over RabbitMQ from <c>ConnectionStrings:rabbit</c> (an amqp:// URI). Queues are prefixed with
/// the service name, so each service gets its own copy of a published event while replicas of one service
/// compete for it.
/// </summary>
public static class PgkdBusExtensions
{
    public static TBuilder AddPgkdBus<TBuilder>(this TBuilder builder, Action<IBusRegistrationConfigurator>? configure = null)
        where TBuilder : IHostApplicationBuilder
    {
        var connectionString = builder.Configuration.GetConnectionString(ServiceNames.Rabbit);
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new InvalidOperationException(
                $"ConnectionStrings:{ServiceNames.Rabbit} is not set. Start the service through the AppHost (./build.sh run), " +
                "or set ConnectionStrings__rabbit=amqp://user:password@host:5672.");
        var broker = ParseAmqpUri(connectionString);
        var serviceName = builder.ServiceName();

        // Hosted services start in order: the warm-up before MassTransit's takes no message, the one after needs the bus.
        var registrations = builder.Services;
        builder.Services.AddHostedService(sp => new BusWarmUpBeforeStart(sp, registrations, sp.GetRequiredService<ILogger<BusWarmUpBeforeStart>>()));
        builder.Services.AddMassTransit(bus =>
        {
            bus.SetEndpointNameFormatter(new KebabCaseEndpointNameFormatter(serviceName + "-", includeNamespace: false));
            configure?.Invoke(bus);
            // Transient failures (a blob or broker blip) are retried; a message that still fails goes to the
            // endpoint's _error queue with the exception in its headers, and a Fault<T> tells the orchestrator.
            // A PermanentStepException (e.g. the teacher stayed down past its own retries and deadline) is not
            // retried here: retrying would only multiply the wait before the run fails with the same reason.
            // The in-memory outbox holds a consumer's publishes until it succeeds: a failed attempt announces nothing.
            bus.AddConfigureEndpointsCallback((context, _, endpoint) =>
            {
                endpoint.UseMessageRetry(retry =>
                {
                    retry.Ignore<PermanentStepException>();
                    retry.Intervals(500, 2_000, 5_000, 10_000);
                });
                endpoint.UseInMemoryOutbox(context);
            });
            bus.UsingRabbitMq((context, rabbit) =>
            {
                rabbit.Host(broker.Host, broker.Port, broker.VirtualHost, h =>
                {
                    h.Username(broker.UserName);
                    h.Password(broker.Password);
                });
                rabbit.ConfigureEndpoints(context);
            });
        });
        builder.Services.AddHostedService<BusWarmUpAfterStart>();
        return builder;
    }

    /// <summary>Adds the consumer that answers the gateway's <see cref="Ping"/>; every pipeline service has one.</summary>
    public static IBusRegistrationConfigurator AddPingResponder(this IBusRegistrationConfigurator bus)
    {
        bus.AddConsumer<PingConsumer>();
        return bus;
    }

    internal sealed record AmqpBroker(string Host, ushort Port, string VirtualHost, string UserName, string Password);

    internal static AmqpBroker ParseAmqpUri(string connectionString)
    {
        if (!Uri.TryCreate(connectionString, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps"))
            throw new InvalidOperationException(
                $"ConnectionStrings:{ServiceNames.Rabbit} must be an amqp:// URI such as amqp://user:password@host:5672, was '{Redact(connectionString)}'.");
        var user = uri.UserInfo.Split(':', 2);
        var vhost = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        return new AmqpBroker(
            uri.Host,
            (ushort)(uri.IsDefaultPort ? 5672 : uri.Port),
            vhost.Length == 0 ? "/" : vhost,
            user.Length > 0 && user[0].Length > 0 ? Uri.UnescapeDataString(user[0]) : "guest",
            user.Length > 1 ? Uri.UnescapeDataString(user[1]) : "guest");
    }

    private static string Redact(string s) => s.Contains('@') ? "***@" + s[(s.IndexOf('@') + 1)..] : s;
}
