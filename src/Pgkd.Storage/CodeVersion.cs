using System.Reflection;

namespace Pgkd.Storage;

/// <summary>
/// Which code this process runs: the build's informational version, which the SDK ends with the git commit it was built from
/// (<c>1.0.0+73ab265…</c>). Stored with every run and every step output, and with the benchmark's quality runs, so a stored
/// figure can always be traced to the code that produced it.
/// </summary>
public static class CodeVersion
{
    public static string Current { get; } =
        typeof(CodeVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
}
