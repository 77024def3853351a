using Pgkd.Core.Teacher;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pgkd.Generator.Teacher;

namespace Pgkd.Generator.Tests;

/// <summary>A bad teacher configuration fails fast, naming the setting to fix.</summary>
public sealed class TeacherConfigurationTests
{
    [Theory]
    [InlineData(null, "ConnectionStrings:teacher is not set")]
    [InlineData("", "ConnectionStrings:teacher is not set")]
    [InlineData("Deployment=gpt-4o-mini;Key=k", "has no Endpoint")]
    [InlineData("Endpoint=not a url;Deployment=d;Key=k", "Endpoint in ConnectionStrings:teacher must be an absolute http(s) URL")]
    [InlineData("Endpoint=ftp://x/;Deployment=d;Key=k", "Endpoint in ConnectionStrings:teacher")]
    [InlineData("Endpoint=https://x.openai.azure.com/;Key=k", "has no Deployment")]
    [InlineData("Endpoint=https://api.openai.com/v1;Deployment=gpt-4o", "has no Key")]
    [InlineData("Endpoint=https://x/;Deployment=d;Key=k;Kind=Gemini", "Kind in ConnectionStrings:teacher must be AzureOpenAI or OpenAI")]
    [InlineData("Endpoint=https://x/;Deployment=d;Key=k;Deploymnet=e", "unknown setting(s) Deploymnet")]
    public void BadConnectionStrings_FailWithTheSettingNamed(string? connectionString, string expected)
    {
        var e = Assert.Throws<TeacherConfigurationException>(() => TeacherConnection.Parse(connectionString));
        Assert.Contains(expected, e.Message, StringComparison.OrdinalIgnoreCase); // keys come back lower-cased
        Assert.Equal("ConnectionStrings:teacher", e.Setting);
    }

    [Fact]
    public void GoodConnectionStrings_Parse()
    {
        var azure = TeacherConnection.Parse("Endpoint=https://res.openai.azure.com/;Deployment=gpt-4o-mini;Key=abc");
        Assert.Equal(new TeacherConnection(TeacherKind.AzureOpenAI, new Uri("https://res.openai.azure.com/"), "gpt-4o-mini", "abc"), azure);
        Assert.DoesNotContain("abc", azure.ToString()); // logs never show the key

        var entra = TeacherConnection.Parse("endpoint=https://res.cognitiveservices.azure.com/;deployment=teacher;key=");
        Assert.True(entra.UsesEntraId);

        var ollama = TeacherConnection.Parse("Endpoint=http://localhost:11434/v1;Model=llama3.1;Key=ollama");
        Assert.Equal(TeacherKind.OpenAI, ollama.Kind);
        Assert.Equal("llama3.1", ollama.Deployment);

        var emulator = TeacherConnection.Parse("Endpoint=http://127.0.0.1:5084/;Deployment=pgkd-teacher;Key=k;Kind=AzureOpenAI");
        Assert.Equal(TeacherKind.AzureOpenAI, emulator.Kind);
    }

    [Theory]
    [InlineData(TeacherKind.AzureOpenAI)]
    [InlineData(TeacherKind.OpenAI)]
    public async Task AWrongKey_FailsOnTheFirstAnswer_NamingKey(TeacherKind kind)
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, kind, key: "wrong");

        var e = await Assert.ThrowsAsync<TeacherConfigurationException>(() => client.VerifyAsync());

        Assert.Contains("Fix Key in ConnectionStrings:teacher", e.Message);
        Assert.Equal(1, server.Stats.Requests); // not retried
    }

    [Theory]
    [InlineData(TeacherKind.AzureOpenAI)]
    [InlineData(TeacherKind.OpenAI)]
    public async Task AnUnknownDeployment_FailsOnTheFirstAnswer_NamingDeployment(TeacherKind kind)
    {
        await using var server = await TestTeacher.StartEmulatorAsync();
        var client = TestTeacher.Client(server, kind, deployment: "gpt-nope");

        var e = await Assert.ThrowsAsync<TeacherConfigurationException>(() =>
            client.GenerateAsync(TestTeacher.Prompt([1, 1, 1, 1]), TestTeacher.ReplyContext(), new("run", 1), new TeacherUsageLedger(TeacherBudget.Unlimited)));

        Assert.Contains("'gpt-nope'", e.Message);
        Assert.Contains("Fix Deployment in ConnectionStrings:teacher", e.Message);
        Assert.Equal(1, server.Stats.Requests);
    }

    [Fact]
    public async Task NothingListeningAtTheEndpoint_GivesUpAfterRetries_NamingTheEndpoint()
    {
        var client = new TeacherClient(TeacherConnection.Parse("Endpoint=http://127.0.0.1:9/v1;Model=m;Key=k"), TestTeacher.FastOptions(o => o.MaxRetries = 1));
        var e = await Assert.ThrowsAsync<TeacherUnavailableException>(() => client.VerifyAsync());
        Assert.Contains("http://127.0.0.1:9/v1", e.Message);
        Assert.Equal(2, e.Attempts);
    }

    [Fact]
    public void TheGeneratorHost_WithoutATeacher_FailsWhileBuilding()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var e = Assert.Throws<TeacherConfigurationException>(() => builder.AddTeacherClient());
        Assert.Contains("ConnectionStrings:teacher is not set", e.Message);
    }

    [Fact]
    public async Task TheGeneratorHost_WithAWrongKey_FailsToStart_AndWithTheRightOneStarts()
    {
        await using var server = await TestTeacher.StartEmulatorAsync();

        IHost Build(string key)
        {
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:teacher"] = TestTeacher.ConnectionString(server, TeacherKind.AzureOpenAI, key),
                ["Teacher:MaxRetries"] = "1",
                ["Teacher:BaseDelay"] = "00:00:00.010",
            });
            builder.Services.AddLogging();
            builder.AddTeacherClient();
            return builder.Build();
        }

        using var bad = Build("wrong");
        var e = await Assert.ThrowsAsync<TeacherConfigurationException>(() => bad.StartAsync());
        Assert.Contains("Key", e.Message);

        using var good = Build(TestTeacher.Key);
        await good.StartAsync();
        Assert.NotNull(good.Services.GetRequiredService<TeacherClient>());
        await good.StopAsync();
    }
}

/// <summary>Azure without a key signs in with Entra ID; with no identity available that fails fast, naming Key.</summary>
public sealed class EntraIdTests
{
    [Fact]
    public async Task AzureWithoutAKey_UsesEntraId_AndWithoutAnIdentityFailsNamingKey()
    {
        var connection = TeacherConnection.Parse("Endpoint=https://127.0.0.1:9/;Deployment=gpt-4o-mini;Kind=AzureOpenAI");
        Assert.True(connection.UsesEntraId);
        var client = new TeacherClient(connection, TestTeacher.FastOptions(o => o.MaxRetries = 0));
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<TeacherConfigurationException>(() => client.VerifyAsync());
        Assert.Contains("Entra ID", e.Message);
        Assert.Contains("set Key in ConnectionStrings:teacher", e.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"took {watch.Elapsed}");
    }
}

/// <summary>The Teacher section binds: retries, prices, budget (what appsettings.json and environment variables set).</summary>
public sealed class TeacherOptionsBindingTests
{
    [Fact]
    public void TeacherSection_BindsPricesBudgetAndRetries()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:teacher"] = "Endpoint=https://res.openai.azure.com/;Deployment=gpt-4o-mini;Key=k",
            ["Teacher:VerifyOnStartup"] = "false",
            ["Teacher:MaxRetries"] = "7",
            ["Teacher:BaseDelay"] = "00:00:00.250",
            ["Teacher:Budget:MaxTotalTokens"] = "50000",
            ["Teacher:Budget:MaxCostUsd"] = "1.25",
            ["Teacher:Prices:gpt-4o-mini:InputPerMillion"] = "0.15",
            ["Teacher:Prices:gpt-4o-mini:OutputPerMillion"] = "0.6",
            ["Generator:SamplesPerRequest"] = "8",
        });
        builder.AddTeacherClient();
        using var host = builder.Build();
        var options = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TeacherClientOptions>>().Value;
        Assert.Equal(7, options.MaxRetries);
        Assert.Equal(TimeSpan.FromMilliseconds(250), options.BaseDelay);
        Assert.Equal(new TeacherBudget(50000, 1.25m), options.Budget);
        Assert.Equal(new TokenPrice(0.15m, 0.6m), options.Prices["gpt-4o-mini"]);
        Assert.Equal(new TokenPrice(0.15m, 0.6m), host.Services.GetRequiredService<TeacherClient>().Price);
        Assert.Empty(host.Services.GetServices<IHostedService>()); // VerifyOnStartup=false
    }

    [Fact]
    public void ARequestTimeoutTheRetryPipelineRefuses_FailsNamingTheSection()
    {
        var e = Assert.Throws<TeacherConfigurationException>(() => new TeacherClient(
            TeacherConnection.Parse("Endpoint=http://127.0.0.1:1/v1;Model=m;Key=k"), new TeacherClientOptions { RequestTimeout = TimeSpan.FromMilliseconds(5) }));
        Assert.Equal(TeacherClientOptions.Section, e.Setting);
        Assert.Contains("Timeout", e.Message);
    }

    [Fact]
    public void TheShippedAppSettings_Bind()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        // From the source tree: the test output holds the emulator's and the generator's appsettings.json under one name.
        builder.Configuration.AddJsonFile(Repository.Path("src", "Pgkd.Generator", "appsettings.json"), optional: false);
        builder.Configuration["ConnectionStrings:teacher"] = "Endpoint=http://127.0.0.1:1/;Deployment=pgkd-teacher;Key=k;Kind=AzureOpenAI";
        builder.AddTeacherClient();
        using var host = builder.Build();
        var options = host.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<TeacherClientOptions>>().Value;
        Assert.Equal(TeacherBudget.Unlimited, options.Budget);
        Assert.Equal(new TokenPrice(0.15m, 0.60m) { CachedInputPerMillion = 0.075m }, host.Services.GetRequiredService<TeacherClient>().Price);
    }
}
