using System.Text.Json;

namespace PgkdAspire.DeploymentTests;

/// <summary>
/// Issue 8, point 6, in the publish manifest: the gateway's API key and the broker's credentials are secret deploy-time
/// parameters, and the deployed RabbitMQ is created with its own user, so the image's guest/guest account is never made.
/// </summary>
public sealed class PublishSecurityTests(PublishManifestFixture manifest) : IClassFixture<PublishManifestFixture>
{
    private JsonElement Resources => manifest.Resources;

    private JsonElement Resource(string name) => manifest.Resource(name);

    [Fact]
    public void The_gateway_key_comes_from_a_secret_parameter_without_a_default()
    {
        Assert.Equal("{gateway-api-key.value}", Resource("gateway").GetProperty("env").GetProperty("Gateway__ApiKey").GetString());
        var input = Resource("gateway-api-key").GetProperty("inputs").GetProperty("value");
        Assert.True(input.GetProperty("secret").GetBoolean());
        Assert.False(input.TryGetProperty("default", out _), "the deployed key must be asked for, not shipped");
        Assert.DoesNotContain("pgkd-local-dev-key", Resources.GetRawText());
    }

    [Fact]
    public void The_deployed_broker_has_its_own_user_and_no_guest_account()
    {
        var rabbit = Resource("rabbit");
        var env = rabbit.GetProperty("env");
        // With RABBITMQ_DEFAULT_USER/PASS set, the image creates that user instead of guest/guest.
        Assert.Equal("{rabbit-user.value}", env.GetProperty("RABBITMQ_DEFAULT_USER").GetString());
        Assert.Equal("{rabbit-password.value}", env.GetProperty("RABBITMQ_DEFAULT_PASS").GetString());
        Assert.Equal("parameter.v0", Resource("rabbit-user").GetProperty("type").GetString());
        Assert.DoesNotContain("guest", rabbit.GetRawText(), StringComparison.OrdinalIgnoreCase);
        foreach (var service in new[] { "orchestrator", "generator", "trainer", "evaluator", "gateway" })
            Assert.DoesNotContain("guest", Resource(service).GetRawText(), StringComparison.OrdinalIgnoreCase);
    }
}
