using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Configuration;
using Pgkd.Contracts;
using PgkdAspire.AppHost;

namespace PgkdAspire.FunctionalTests;

/// <summary>The AppHost's replica counts (<c>--replicas:trainer=2</c>): read, checked, and given to Aspire's resources.</summary>
public sealed class ServiceReplicasTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Every_service_runs_once_unless_configured()
    {
        var replicas = ServiceReplicas.FromConfiguration(Config());
        foreach (var service in ServiceReplicas.Replicable) Assert.Equal(1, replicas.Of(service));
    }

    [Fact]
    public void Counts_come_from_the_replicas_section_whatever_the_case_of_the_key()
    {
        // "Replicas__Trainer=3" in the environment arrives as the key "Replicas:Trainer".
        var replicas = ServiceReplicas.FromConfiguration(Config(("replicas:trainer", "2"), ("Replicas:Evaluator", "3"), ("replicas:gateway", " 2 ")));
        Assert.Equal(2, replicas.Of(ServiceNames.Trainer));
        Assert.Equal(3, replicas.Of(ServiceNames.Evaluator));
        Assert.Equal(2, replicas.Of(ServiceNames.Gateway));
        Assert.Equal(1, replicas.Of(ServiceNames.Generator));
    }

    [Theory]
    [InlineData("two")]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("9")]
    [InlineData("1.5")]
    [InlineData("")]
    public void A_count_that_is_not_a_whole_number_from_1_to_8_is_named(string value)
    {
        var error = Assert.Throws<ArgumentException>(() => ServiceReplicas.FromConfiguration(Config(("replicas:trainer", value))));
        Assert.Contains($"replicas:trainer must be a whole number from 1 to {ServiceReplicas.Max}, was '{value}'", error.Message);
    }

    [Fact]
    public void An_unknown_service_and_the_teacher_emulator_are_refused_by_name()
    {
        var error = Assert.Throws<ArgumentException>(() =>
            ServiceReplicas.FromConfiguration(Config(("replicas:trainr", "2"), ("replicas:teacher-emulator", "2"))));
        Assert.Contains("replicas:trainr: no such service", error.Message);
        Assert.Contains("replicas:teacher-emulator: the teacher emulator runs once", error.Message);
    }

    [Fact]
    public async Task The_AppHost_gives_the_counts_to_Aspire_as_replicas()
    {
        var arguments = TestAppHostArguments.Create();
        await using var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(
            [.. arguments.ToArgs(), "--replicas:trainer=2", "--replicas:gateway=2"]);
        int? Replicas(string name) =>
            builder.Resources.Single(r => r.Name == name).TryGetLastAnnotation<ReplicaAnnotation>(out var replicas) ? replicas.Replicas : null;
        Assert.Equal(2, Replicas(ServiceNames.Trainer));
        Assert.Equal(2, Replicas(ServiceNames.Gateway));
        Assert.Null(Replicas(ServiceNames.Evaluator)); // 1: no annotation, the default
    }

    [Fact]
    public async Task The_AppHost_refuses_a_bad_count_before_anything_starts()
    {
        var arguments = TestAppHostArguments.Create();
        var error = await Assert.ThrowsAnyAsync<Exception>(() => DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(
            [.. arguments.ToArgs(), "--replicas:trainer=lots"]));
        Assert.Contains("replicas:trainer must be a whole number from 1 to 8, was 'lots'", error.ToString());
    }
}
