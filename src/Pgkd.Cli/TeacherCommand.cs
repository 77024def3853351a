using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Pgkd.Generator.Teacher;
using Spectre.Console;

namespace Pgkd.Cli;

/// <summary>
/// <c>pgkd teacher check</c>: one small request to the teacher, through the generator's own client (the same
/// connection string, retries and response-format detection a run uses), and what a user wants to know about a new
/// key: which deployment and model answered, how fast, how many tokens at what price, and which response formats it
/// takes. The teacher comes from <c>--teacher</c>, else <c>$PGKD_TEACHER</c>, else <c>$ConnectionStrings__teacher</c>,
/// else the AppHost's user secret <c>ConnectionStrings:teacher</c> (what <c>./build.sh run</c> gives the generator).
/// </summary>
internal static class TeacherCommand
{
    /// <summary>The AppHost's UserSecretsId (AppHost/PgkdAspire.AppHost.csproj).</summary>
    public const string AppHostUserSecretsId = "7d04ec67-48dc-40eb-a981-e5a8cbae6939";

    public static async Task<int> RunAsync(CliArguments args, IAnsiConsole output, Func<string, string?> environment, CancellationToken cancellationToken)
    {
        args.Allow("teacher");
        if (args.Positionals is not ["check"])
            throw new CliException(ExitCodes.Usage, "usage: pgkd teacher check [--teacher \"Endpoint=...;Deployment=...;Key=...\"]");
        var (text, source) = Resolve(args, environment);
        TeacherConnection connection;
        try
        {
            connection = TeacherConnection.Parse(text);
        }
        catch (TeacherConfigurationException e)
        {
            throw new CliException(ExitCodes.Rejected, $"the teacher connection string from {source} is wrong: {e.Message.Replace(TeacherConnection.Setting, "it", StringComparison.Ordinal)}");
        }

        var options = new TeacherClientOptions
        {
            MaxRetries = 2,
            RequestTimeout = TimeSpan.FromSeconds(60),
            VerifyOnStartup = false,
            MaxOutputTokens = 200,
        };
        // The generator's prices (its appsettings.json travels with the pgkd tool), so the price per call is a run's.
        var pricesFile = Path.Combine(AppContext.BaseDirectory, "generator.appsettings.json");
        if (File.Exists(pricesFile))
            new ConfigurationBuilder().AddJsonFile(pricesFile, optional: true).Build().GetSection(TeacherClientOptions.Section).Bind(options);
        options.MaxRetries = Math.Min(options.MaxRetries, 2);
        var client = new TeacherClient(connection, options);

        output.MarkupLine($"Checking the teacher from {Markup.Escape(source)}: {Markup.Escape(connection.ToString())}");
        TeacherCheck check;
        try
        {
            check = await client.CheckAsync(cancellationToken);
        }
        catch (TeacherConfigurationException e)
        {
            throw new CliException(e.Message.Contains("API key", StringComparison.Ordinal) || e.Message.Contains("Entra", StringComparison.Ordinal)
                ? ExitCodes.Unauthorized : ExitCodes.Rejected, $"{e.Message.Replace(TeacherConnection.Setting, $"the connection string ({source})", StringComparison.Ordinal)}");
        }
        catch (TeacherUnavailableException e)
        {
            throw new CliException(ExitCodes.Unreachable, $"{e.Message} Check Endpoint in the connection string ({source}).");
        }
        catch (TeacherRequestException e)
        {
            throw new CliException(ExitCodes.GatewayError, e.Message);
        }
        catch (TeacherContentFilterException e)
        {
            throw new CliException(ExitCodes.GatewayError, "the teacher's content filter refused the check's tiny prompt: " + e.Message);
        }

        var call = check.Call;
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        void Row(string name, string value) => grid.AddRow(new Markup($"[grey]{name}[/]"), new Markup(Markup.Escape(value)));
        Row("endpoint", $"{connection.Endpoint} ({connection.Kind}, {(connection.UsesEntraId ? "Entra ID" : "API key")})");
        Row("deployment", connection.Deployment);
        Row("model", check.Model ?? "(the reply names none)");
        Row("latency", $"{call.Latency.TotalMilliseconds:0} ms" + (call.Attempts > 1 ? $" (after {call.Attempts - 1} retries)" : ""));
        Row("tokens", $"{call.PromptTokens} prompt ({call.CachedPromptTokens} cached) + {call.CompletionTokens} completion");
        var price = check.Price;
        Row("price", check.Priced
            ? $"${call.CostUsd.ToString("0.########", CultureInfo.InvariantCulture)} this call · per million tokens: input ${price.InputPerMillion.ToString(CultureInfo.InvariantCulture)}, " +
              $"cached ${(price.CachedInputPerMillion ?? price.InputPerMillion).ToString(CultureInfo.InvariantCulture)}, output ${price.OutputPerMillion.ToString(CultureInfo.InvariantCulture)}, " +
              $"Batch API ×{price.BatchMultiplier.ToString(CultureInfo.InvariantCulture)}"
            : $"no price for '{connection.Deployment}' in Teacher:Prices (src/Pgkd.Generator/appsettings.json): runs count its cost as $0 and a $ budget never stops them");
        foreach (var (mode, refusal) in check.ResponseModes)
            Row(mode.WireName(), refusal is null ? "accepted" : "refused: " + refusal);
        Row("runs ask in", check.RunsAskIn.WireName() + (check.RunsAskIn == TeacherResponseMode.JsonSchema
            ? " (labels as an enum: no label outside the set)" : " (labels outside the set are possible and rejected)"));
        output.Write(grid);
        output.MarkupLine("[green]The teacher answers.[/]");
        return ExitCodes.Ok;
    }

    /// <summary>The connection string and where it came from.</summary>
    internal static (string Connection, string Source) Resolve(CliArguments args, Func<string, string?> environment)
    {
        if (args.Option("teacher") is { Length: > 0 } given) return (given, "--teacher");
        if (environment("PGKD_TEACHER") is { Length: > 0 } pgkd) return (pgkd, "$PGKD_TEACHER");
        if (environment("ConnectionStrings__teacher") is { Length: > 0 } aspire) return (aspire, "$ConnectionStrings__teacher");
        if (environment("HOME") is { Length: > 0 } home)
        {
            var secrets = Path.Combine(home, ".microsoft", "usersecrets", AppHostUserSecretsId, "secrets.json");
            if (File.Exists(secrets))
            {
                try
                {
                    if (JsonNode.Parse(File.ReadAllText(secrets))?["ConnectionStrings:teacher"]?.GetValue<string>() is { Length: > 0 } secret)
                        return (secret, $"the AppHost's user secret ConnectionStrings:teacher ({secrets})");
                }
                catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or IOException)
                {
                    throw new CliException(ExitCodes.Usage, $"cannot read the AppHost's user secrets at {secrets}: {e.Message}");
                }
            }
        }
        throw new CliException(ExitCodes.Usage,
            "no teacher is configured. Pass --teacher \"Endpoint=https://<resource>.openai.azure.com/;Deployment=<name>;Key=<key>\", " +
            "or set PGKD_TEACHER, or the AppHost's user secret (dotnet user-secrets --project AppHost set ConnectionStrings:teacher \"...\").");
    }
}
