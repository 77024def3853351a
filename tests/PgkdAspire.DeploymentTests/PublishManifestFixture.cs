using System.Text.Json;

namespace PgkdAspire.DeploymentTests;

/// <summary>The AppHost's publish manifest (what `azd up` deploys from), generated once by the real AppHost.</summary>
public sealed class PublishManifestFixture : IAsyncLifetime
{
    private string _outputDirectory = "";

    public JsonElement Resources { get; private set; }

    public JsonElement Resource(string name) =>
        Resources.TryGetProperty(name, out var r) ? r : throw new Xunit.Sdk.XunitException($"resource '{name}' missing from the manifest");

    public async Task InitializeAsync()
    {
        _outputDirectory = Directory.CreateTempSubdirectory("pgkd-manifest").FullName;
        var manifestPath = Path.Combine(_outputDirectory, "aspire-manifest.json");
        var result = await ExternalProcess.RunAsync("dotnet",
            ["run", "--project", "AppHost", "--no-build", "--no-launch-profile", "--",
             "--publisher", "manifest", "--output-path", manifestPath], TimeSpan.FromMinutes(2));
        Assert.True(result.ExitCode == 0 && File.Exists(manifestPath), result.ToString());
        using var document = JsonDocument.Parse(await File.ReadAllTextAsync(manifestPath));
        Resources = document.RootElement.GetProperty("resources").Clone();
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_outputDirectory, recursive: true);
        return Task.CompletedTask;
    }
}
