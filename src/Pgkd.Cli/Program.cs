using Pgkd.Cli;
using Spectre.Console;

// Errors go to stderr so `pgkd status RUN > status.txt` keeps only the report.
var errors = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
using var interrupted = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true; // let the command stop cleanly (a live view restores the cursor)
    interrupted.Cancel();
};
return await new PgkdCli(AnsiConsole.Console, errors, Environment.GetEnvironmentVariable).RunAsync(args, interrupted.Token);
