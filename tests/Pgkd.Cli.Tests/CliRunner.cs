using Spectre.Console;

namespace Pgkd.Cli.Tests;

/// <summary>Runs pgkd in-process with captured, plain-text (no ANSI, wide) consoles and a chosen environment.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Output, string Errors);

    public static async Task<Result> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var (output, outWriter) = Console();
        var (errors, errWriter) = Console();
        var exit = await new PgkdCli(output, errors, name => environment?.GetValueOrDefault(name)).RunAsync(args);
        return new Result(exit, outWriter.ToString(), errWriter.ToString());
    }

    public static Task<Result> RunAsync(params string[] args) => RunAsync(null, args);

    private static (IAnsiConsole, StringWriter) Console()
    {
        var writer = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 240;
        return (console, writer);
    }

    /// <summary>A loopback port nothing listens on (bound, then released), for the "gateway unreachable" path.</summary>
    public static string ClosedGateway() => $"http://127.0.0.1:{FreePorts.One()}";
}
