using Microsoft.Extensions.Options;
using Pgkd.Generator.Shards;

namespace Pgkd.Generator.Teacher;

public static class TeacherServiceExtensions
{
    /// <summary>
    /// Registers the <see cref="TeacherClient"/> from <c>ConnectionStrings:teacher</c> and section
    /// <c>Teacher</c>, and the <see cref="RoundShardGenerator"/> (section <c>Generator</c>). A missing or
    /// malformed connection string throws here, before the host starts; a wrong key or deployment is
    /// caught by one tiny request at start-up (<see cref="TeacherClientOptions.VerifyOnStartup"/>).
    /// </summary>
    public static TBuilder AddTeacherClient<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var connection = TeacherConnection.Parse(builder.Configuration.GetConnectionString(TeacherConnection.ConnectionName));
        var options = new TeacherClientOptions();
        builder.Configuration.GetSection(TeacherClientOptions.Section).Bind(options);
        var shardOptions = new RoundShardOptions();
        builder.Configuration.GetSection(RoundShardOptions.Section).Bind(shardOptions);

        builder.Services.AddSingleton(connection);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(sp => new TeacherClient(connection, options, sp.GetService<ILogger<TeacherClient>>()));
        builder.Services.AddSingleton(sp => new RoundShardGenerator(sp.GetRequiredService<TeacherClient>(), shardOptions));
        if (options.VerifyOnStartup) builder.Services.AddHostedService<TeacherStartupCheck>();
        return builder;
    }
}

/// <summary>
/// Start-up check: one tiny request. A configuration error (wrong key, unknown deployment) stops the
/// service with the message naming the setting; a teacher that is merely unavailable is logged and
/// the service starts (the rounds retry on their own).
/// </summary>
internal sealed class TeacherStartupCheck(TeacherClient teacher, ILogger<TeacherStartupCheck> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var record = await teacher.VerifyAsync(cancellationToken);
            logger.LogInformation("Teacher {Connection} answered in {Latency} ms", teacher.Connection, (int)record.Latency.TotalMilliseconds);
        }
        catch (TeacherConfigurationException e)
        {
            logger.LogCritical("Teacher configuration error: {Message}", e.Message);
            throw;
        }
        catch (Exception e) when (e is TeacherUnavailableException or TeacherRequestException)
        {
            logger.LogWarning("Teacher {Connection} is not answering yet: {Message}", teacher.Connection, e.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
