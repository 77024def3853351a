namespace PgkdAspire.TestSupport;

/// <summary>The checkout the tests run from: the folder holding PgkdAspire.sln, found by walking up from the test binaries.</summary>
public static class Repository
{
    private static readonly Lazy<string> LazyRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "PgkdAspire.sln"))) return dir.FullName;
        throw new InvalidOperationException($"PgkdAspire.sln not found above {AppContext.BaseDirectory}");
    });

    /// <summary>The repository root; throws, naming where it looked, when the tests do not run inside a checkout.</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>A path below the repository root.</summary>
    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    /// <summary>
    /// <c>../shared/data/&lt;name&gt;</c> next to the repository root, whether or not it exists: real data lives there and is
    /// never copied into the repository.
    /// </summary>
    public static string SharedDataFolder(string name) => System.IO.Path.GetFullPath(System.IO.Path.Combine(Root, "..", "shared", "data", name));

    /// <summary>A program the bootstrap installs with npm into <c>.tools/node_modules/.bin</c> (azurite-blob, …).</summary>
    public static string NodeTool(string name) => Path(".tools", "node_modules", ".bin", name);
}
