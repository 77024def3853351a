using System.Globalization;
using Microsoft.Extensions.Configuration;
using Pgkd.Contracts;

namespace PgkdAspire.AppHost;

/// <summary>
/// How many processes each service runs, from the AppHost's configuration section <c>replicas</c>:
/// <c>--replicas:trainer=2</c> on the command line, <c>Replicas__trainer=2</c> in the environment. Default 1.
/// Replicas of one service are competing consumers of that service's queues (queue names are prefixed by the service
/// name, src/ServiceDefaults/PgkdBusExtensions.cs), and every handler is idempotent, so a command is carried out once
/// whichever replica takes it. The gateway's replicas each hot-swap the served model: RunCompleted reaches each of
/// them on a queue of its own (src/Pgkd.Gateway/Models/ModelSwapper.cs).
/// </summary>
public sealed class ServiceReplicas
{
    public const string Section = "replicas";

    /// <summary>At most this many per service: each replica of the trainer holds its own libtorch (1.5-2 GB while training).</summary>
    public const int Max = 8;

    /// <summary>The services that may run several replicas.</summary>
    public static readonly IReadOnlyList<string> Replicable =
        [ServiceNames.Orchestrator, ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator, ServiceNames.Gateway];

    private readonly IReadOnlyDictionary<string, int> _counts;

    private ServiceReplicas(IReadOnlyDictionary<string, int> counts) => _counts = counts;

    /// <summary>The replica count of <paramref name="service"/>: 1 unless configured.</summary>
    public int Of(string service) => _counts.TryGetValue(service, out var n) ? n : 1;

    /// <summary>
    /// Reads and checks the <c>replicas</c> section; throws <see cref="ArgumentException"/> naming the bad key or value
    /// (an unknown service, a service that must stay single, a count that is not a whole number from 1 to <see cref="Max"/>).
    /// </summary>
    public static ServiceReplicas FromConfiguration(IConfiguration configuration)
    {
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var problems = new List<string>();
        foreach (var entry in configuration.GetSection(Section).GetChildren())
        {
            var service = Replicable.FirstOrDefault(s => s.Equals(entry.Key, StringComparison.OrdinalIgnoreCase));
            if (service is null)
            {
                problems.Add(entry.Key.Equals(ServiceNames.TeacherEmulator, StringComparison.OrdinalIgnoreCase)
                    ? $"{Section}:{entry.Key}: the teacher emulator runs once (what it handed each run lives in its process)"
                    : $"{Section}:{entry.Key}: no such service; replicas can be set for {string.Join(", ", Replicable)}");
                continue;
            }
            if (!int.TryParse(entry.Value?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > Max)
            {
                problems.Add($"{Section}:{entry.Key} must be a whole number from 1 to {Max}, was '{entry.Value}'");
                continue;
            }
            counts[service] = n;
        }
        if (problems.Count > 0)
            throw new ArgumentException(string.Join("\n", problems) + $"\nExample: --{Section}:{ServiceNames.Trainer}=2 (or Replicas__{ServiceNames.Trainer}=2 in the environment).");
        return new ServiceReplicas(counts);
    }

    public override string ToString() =>
        _counts.Count == 0 ? "one of each" : string.Join(", ", _counts.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}"));
}
