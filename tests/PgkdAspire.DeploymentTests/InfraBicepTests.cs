using System.Reflection;
using System.Text.Json;

namespace PgkdAspire.DeploymentTests;

/// <summary>infra/*.bicep compiled and linted with the bicep CLI from NuGet, then the ARM template inspected.</summary>
public sealed class InfraBicepTests
{
    private static readonly string Bicep = typeof(InfraBicepTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BicepPath").Value!.Replace('\\', '/');

    private static string Infra(string file) => Path.Combine(Repository.Root, "infra", file);

    [Theory]
    [InlineData("main.bicep")]
    [InlineData("resources.bicep")]
    public async Task Bicep_builds_and_lints_without_a_single_diagnostic(string file)
    {
        var lint = await ExternalProcess.RunAsync(Bicep, ["lint", Infra(file)], TimeSpan.FromMinutes(2));
        Assert.True(lint.ExitCode == 0, lint.ToString());
        Assert.True(lint.StandardError.Trim().Length == 0 && lint.StandardOutput.Trim().Length == 0, lint.ToString());

        var build = await ExternalProcess.RunAsync(Bicep, ["build", Infra(file), "--stdout"], TimeSpan.FromMinutes(2));
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.True(build.StandardError.Trim().Length == 0, build.ToString());
        using var template = JsonDocument.Parse(build.StandardOutput);
        Assert.StartsWith("https://schema.management.azure.com/schemas/", template.RootElement.GetProperty("$schema").GetString());
    }

    [Fact]
    public async Task Storage_is_private_and_services_reach_it_and_the_teacher_with_managed_identity()
    {
        var build = await ExternalProcess.RunAsync(Bicep, ["build", Infra("resources.bicep"), "--stdout"], TimeSpan.FromMinutes(2));
        Assert.True(build.ExitCode == 0, build.ToString());
        using var template = JsonDocument.Parse(build.StandardOutput);
        var resources = template.RootElement.GetProperty("resources");
        var all = resources.ValueKind == JsonValueKind.Object
            ? resources.EnumerateObject().Select(p => p.Value).ToList()
            : resources.EnumerateArray().ToList();
        JsonElement OfType(string type) => all.Single(r => r.GetProperty("type").GetString() == type);

        var storage = OfType("Microsoft.Storage/storageAccounts").GetProperty("properties");
        Assert.False(storage.GetProperty("allowBlobPublicAccess").GetBoolean());
        Assert.Equal("None", OfType("Microsoft.Storage/storageAccounts/blobServices/containers").GetProperty("properties").GetProperty("publicAccess").GetString());
        Assert.True(OfType("Microsoft.CognitiveServices/accounts").GetProperty("properties").GetProperty("disableLocalAuth").GetBoolean(),
            "Azure OpenAI must refuse keys: the generator uses its managed identity");
        Assert.Contains(all, r => r.GetProperty("type").GetString() == "Microsoft.CognitiveServices/accounts/deployments");

        // Role ids sit in the `roles` variable; resolve each assignment's reference to it.
        var roleIds = template.RootElement.GetProperty("variables").GetProperty("roles").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var roleAssignments = all.Where(r => r.GetProperty("type").GetString() == "Microsoft.Authorization/roleAssignments")
            .Select(r => r.GetProperty("properties").GetProperty("roleDefinitionId").GetString()!)
            .Select(id => roleIds.Aggregate(id, (text, role) => text.Replace($"variables('roles').{role.Key}", role.Value)))
            .ToList();
        Assert.Contains(roleAssignments, id => id!.Contains("ba92f5b4-2d11-453d-a403-e96b0029c9fe")); // Storage Blob Data Contributor
        Assert.Contains(roleAssignments, id => id!.Contains("5e0bd9bd-7b93-4f28-af87-19fc36ad61bd")); // Cognitive Services OpenAI User
        Assert.Contains(roleAssignments, id => id!.Contains("7f951dda-4ed3-4680-a7ca-43fe172d538d")); // AcrPull

        // Parameterised and secret-free: no parameter takes a secure value, every output is plain configuration.
        foreach (var parameter in template.RootElement.GetProperty("parameters").EnumerateObject())
            Assert.DoesNotContain("secure", parameter.Value.GetProperty("type").GetString()!, StringComparison.OrdinalIgnoreCase);
        foreach (var output in template.RootElement.GetProperty("outputs").EnumerateObject())
            Assert.DoesNotContain("listKeys", output.Value.GetProperty("value").GetString()!, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Every_parameter_azd_passes_is_declared_and_every_required_one_is_passed()
    {
        var build = await ExternalProcess.RunAsync(Bicep, ["build", Infra("main.bicep"), "--stdout"], TimeSpan.FromMinutes(2));
        Assert.True(build.ExitCode == 0, build.ToString());
        using var template = JsonDocument.Parse(build.StandardOutput);
        using var azdParameters = JsonDocument.Parse(File.ReadAllText(Infra("main.parameters.json")));

        var declared = template.RootElement.GetProperty("parameters").EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
        var passed = azdParameters.RootElement.GetProperty("parameters").EnumerateObject().Select(p => p.Name).ToList();
        Assert.All(passed, name => Assert.True(declared.ContainsKey(name), $"main.parameters.json passes undeclared '{name}'"));
        foreach (var (name, parameter) in declared.Where(d => !d.Value.TryGetProperty("defaultValue", out _)))
            Assert.Contains(name, passed);
    }
}
