using Microsoft.Extensions.Configuration;

namespace PgkdAspire.AppHost.LocalStack;

/// <summary>
/// Faults for the teacher emulator, from AppHost arguments or configuration: <c>--teacher-faults:TooManyRequestsRate=0.3</c>
/// becomes the emulator's <c>Emulator__Faults__TooManyRequestsRate=0.3</c> (keys: <c>FaultOptions</c> in
/// src/Pgkd.TeacherEmulator/EmulatorOptions.cs). Used by the reliability scenarios (docs/reliability.md) and for demos.
/// </summary>
public static class TeacherFaults
{
    public const string Section = "teacher-faults";

    public static IResourceBuilder<ProjectResource> WithTeacherFaults(this IResourceBuilder<ProjectResource> emulator, IConfiguration configuration)
    {
        foreach (var fault in configuration.GetSection(Section).GetChildren())
            if (fault.Value is { } value)
                emulator.WithEnvironment($"Emulator__Faults__{fault.Key}", value);
        return emulator;
    }
}
