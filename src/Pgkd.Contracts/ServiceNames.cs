namespace Pgkd.Contracts;

/// <summary>Resource names used by the AppHost and by services that need to know who answers.</summary>
public static class ServiceNames
{
    public const string Rabbit = "rabbit";
    public const string Blobs = "blobs";
    public const string Generator = "generator";
    public const string Trainer = "trainer";
    public const string Evaluator = "evaluator";
    public const string Orchestrator = "orchestrator";
    public const string Gateway = "gateway";
    public const string TeacherEmulator = "teacher-emulator";

    /// <summary>The services that consume pipeline messages and so must answer a <see cref="Ping"/>.</summary>
    public static readonly IReadOnlyList<string> PingResponders = [Orchestrator, Generator, Trainer, Evaluator, TeacherEmulator];
}
