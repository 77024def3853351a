namespace Pgkd.TeacherEmulator;

/// <summary>
/// Finds the project's data. Real data (AG News) lives outside the repository in ../shared/data
/// relative to the repository root (the folder holding PgkdAspire.sln); it is never copied in.
/// The demo dataset ships with the emulator and is copied next to its assembly.
/// </summary>
public static class SharedData
{
    /// <summary>The repository root found by walking up from <paramref name="start"/> (default: the app's base directory), or null.</summary>
    public static string? FindRepositoryRoot(string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "PgkdAspire.sln"))) return dir.FullName;
        return null;
    }

    /// <summary><c>../shared/data/&lt;name&gt;</c> from the repository root when that folder exists, else null.</summary>
    public static string? FindDataset(string name)
    {
        var root = FindRepositoryRoot();
        if (root is null) return null;
        var dir = Path.GetFullPath(Path.Combine(root, "..", "shared", "data", name));
        return Directory.Exists(dir) ? dir : null;
    }

    /// <summary>The demo dataset folder copied beside the emulator's assembly.</summary>
    public static string DemoDataDirectory => Path.Combine(AppContext.BaseDirectory, "DemoData");
}
