using Pgkd.Core.Data;

namespace PgkdAspire.AppHost;

/// <summary>The AppHost's <c>--teacher-pool FILE</c>: the teacher emulator's pool for every run, checked before anything starts.</summary>
public static class TeacherPoolFile
{
    /// <summary>
    /// The file's full path once every line is a labeled JSONL example; otherwise an error naming the file and each bad
    /// line. A relative path is taken from where ./build.sh was run (<c>PGKD_CALLER_DIR</c>; <c>dotnet run</c> itself
    /// starts the AppHost in its own folder), else from <paramref name="repositoryRoot"/>.
    /// </summary>
    public static string Check(string path, string repositoryRoot)
    {
        var full = Path.GetFullPath(path, Environment.GetEnvironmentVariable("PGKD_CALLER_DIR") is { Length: > 0 } caller ? caller : repositoryRoot);
        if (!File.Exists(full))
            throw new ArgumentException($"--teacher-pool: {full} does not exist. Give a JSONL file of {{\"text\": ..., \"label\": ...}} lines.");
        try
        {
            using var stream = File.OpenRead(full);
            var pool = DatasetReader.ReadJsonl(stream, full, new DatasetReadOptions { MaxTextLength = 100_000 });
            return pool.Count > 0 ? full : throw new ArgumentException($"--teacher-pool: {full} holds no examples.");
        }
        catch (DatasetFormatException e)
        {
            throw new ArgumentException($"--teacher-pool: {full} is not a labeled JSONL file:\n  " + string.Join("\n  ", e.Errors) +
                                        (e.MoreErrorsOmitted ? "\n  (more errors omitted)" : ""));
        }
    }
}
