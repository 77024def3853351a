using System.Diagnostics;
using Microsoft.Extensions.Options;

namespace Pgkd.TeacherEmulator;

/// <summary>
/// Computes every pool text's label agreement (<see cref="TeacherPool.LabelAgreement"/>) once at startup, on every core and in the
/// background, so the first guided request does not pay for it; a request that comes earlier computes what it needs itself.
/// Logs how long it took: on a 30,000-text pool this is the emulator's warm-up.
/// </summary>
internal sealed class PoolWarmUp(TeacherPool pool, IOptions<EmulatorOptions> options, ILogger<PoolWarmUp> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() =>
    {
        var clock = Stopwatch.StartNew();
        pool.WarmUp(options.Value.Policy.AgreementNeighbours, stoppingToken);
        logger.LogInformation("Teacher emulator pool warmed up: label agreement of {Count} texts in {Seconds:F1} s",
            pool.Examples.Count, clock.Elapsed.TotalSeconds);
    }, stoppingToken);
}
