using Pgkd.TeacherEmulator;
using Xunit.Abstractions;

namespace Pgkd.Cli.Tests;

/// <summary>Issue 22 point 6: <c>pgkd teacher check</c> against a real teacher emulator, and its errors.</summary>
public sealed class TeacherCheckTests(ITestOutputHelper log)
{
    private const string Key = "cli-check-key";

    private static Task<TeacherEmulatorServer> StartAsync(params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Emulator:ApiKey"] = Key,
            ["Emulator:PoolPath"] = Path.Combine(SharedData.DemoDataDirectory, "pool.jsonl"),
        };
        foreach (var (k, v) in extra) settings[k] = v;
        return TeacherEmulatorServer.StartAsync(settings);
    }

    private static string Azure(TeacherEmulatorServer server, string key = Key) =>
        $"Endpoint={server.Address};Deployment=gpt-4o-mini;Key={key};Kind=AzureOpenAI";

    [Fact]
    public async Task Reports_deployment_model_latency_tokens_price_and_response_formats()
    {
        await using var server = await StartAsync();

        var result = await CliRunner.RunAsync("teacher", "check", "--teacher", Azure(server));

        log.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.Errors + result.Output);
        Assert.Contains("Checking the teacher from --teacher: Kind=AzureOpenAI", result.Output);
        Assert.Matches(@"deployment\s+gpt-4o-mini", result.Output);
        Assert.Matches(@"model\s+gpt-4o-mini", result.Output);
        Assert.Matches(@"latency\s+\d+ ms", result.Output);
        Assert.Matches(@"tokens\s+\d+ prompt \(0 cached\) \+ \d+ completion", result.Output);
        Assert.Matches(@"price\s+\$0\.\d+ this call · per million tokens: input \$0\.15, cached \$0\.075, output \$0\.6", result.Output);
        Assert.Matches(@"json_schema\s+accepted", result.Output);
        Assert.Matches(@"json_object\s+accepted", result.Output);
        Assert.Matches(@"text\s+accepted", result.Output);
        Assert.Matches(@"runs ask in\s+json_schema \(labels as an enum", result.Output);
        Assert.DoesNotContain(Key, result.Output); // the key is never printed
    }

    [Fact]
    public async Task A_server_without_structured_outputs_shows_the_refusal_and_the_mode_runs_fall_back_to()
    {
        await using var server = await StartAsync(("Emulator:ResponseFormats:0", "json_object"), ("Emulator:ResponseFormats:1", "text"));

        var result = await CliRunner.RunAsync(new Dictionary<string, string> { ["PGKD_TEACHER"] = $"Endpoint={server.OpenAiEndpoint};Model=gpt-4o-mini;Key={Key}" },
            "teacher", "check");

        log.WriteLine(result.Output);
        Assert.True(result.ExitCode == 0, result.Errors + result.Output);
        Assert.Contains("from $PGKD_TEACHER", result.Output);
        Assert.Matches(@"json_schema\s+refused: HTTP 400: Invalid parameter: 'response_format' of type 'json_schema' is not supported", result.Output);
        Assert.Matches(@"runs ask in\s+json_object \(labels outside the set are possible", result.Output);
    }

    [Fact]
    public async Task A_wrong_key_is_exit_4_naming_the_key()
    {
        await using var server = await StartAsync();

        var result = await CliRunner.RunAsync("teacher", "check", "--teacher", Azure(server, "wrong"));

        Assert.Equal(ExitCodes.Unauthorized, result.ExitCode);
        Assert.Contains("rejected the API key (HTTP 401). Fix Key in the connection string (--teacher)", result.Errors);
    }

    [Fact]
    public async Task An_unknown_deployment_is_exit_5_naming_the_deployment()
    {
        await using var server = await StartAsync();

        var result = await CliRunner.RunAsync("teacher", "check", "--teacher", $"Endpoint={server.Address};Deployment=gpt-9;Key={Key};Kind=AzureOpenAI");

        Assert.Equal(ExitCodes.Rejected, result.ExitCode);
        Assert.Contains("has no deployment or model 'gpt-9' (HTTP 404). Fix Deployment in the connection string (--teacher)", result.Errors);
    }

    [Fact]
    public async Task Nothing_listening_is_exit_3()
    {
        var result = await CliRunner.RunAsync("teacher", "check", "--teacher", $"Endpoint={CliRunner.ClosedGateway()}/v1;Model=m;Key=k");

        Assert.Equal(ExitCodes.Unreachable, result.ExitCode);
        Assert.Contains("Check Endpoint in the connection string (--teacher)", result.Errors);
    }

    [Theory]
    [InlineData("Endpoint=not a url;Deployment=d;Key=k", 5, "Endpoint in it must be an absolute http(s) URL")]
    [InlineData("Deployment=d;Key=k", 5, "has no Endpoint")]
    [InlineData("Endpoint=https://x.openai.azure.com/;Deployment=d;Colour=blue", 5, "unknown setting(s) Colour")]
    public async Task A_wrong_connection_string_names_the_setting(string connection, int exit, string expected)
    {
        var result = await CliRunner.RunAsync("teacher", "check", "--teacher", connection);

        Assert.Equal(exit, result.ExitCode);
        Assert.Contains("the teacher connection string from --teacher is wrong", result.Errors);
        Assert.Contains(expected, result.Errors, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task No_teacher_configured_says_where_to_set_one()
    {
        var result = await CliRunner.RunAsync(new Dictionary<string, string> { ["HOME"] = Path.GetTempPath() }, "teacher", "check");

        Assert.Equal(ExitCodes.Usage, result.ExitCode);
        Assert.Contains("no teacher is configured. Pass --teacher", result.Errors);
        Assert.Contains("ConnectionStrings:teacher", result.Errors);
    }
}
