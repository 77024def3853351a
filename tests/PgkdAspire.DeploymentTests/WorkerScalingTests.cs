using System.Text.RegularExpressions;
using MassTransit;
using Pgkd.Contracts;
using YamlDotNet.RepresentationModel;

namespace PgkdAspire.DeploymentTests;

/// <summary>
/// Issue 19.7: the workers' Container Apps templates (AppHost/infra/{name}.tmpl.yaml, which azd deploys instead of the app it
/// would derive from the manifest) scale on their RabbitMQ queues with KEDA's rabbitmq scaler; the queue names are the ones
/// MassTransit gives the consumers, and each template still carries every setting the publish manifest gives the service.
/// </summary>
public sealed partial class WorkerScalingTests(PublishManifestFixture manifest) : IClassFixture<PublishManifestFixture>
{
    public static TheoryData<string, string, string> Workers => new()
    {
        { ServiceNames.Generator, "Pgkd.Generator/Rounds/GenerateRoundConsumer.cs", "GenerateRoundConsumer" },
        { ServiceNames.Trainer, "Pgkd.Trainer/TrainRoundConsumer.cs", "TrainRoundConsumer" },
        { ServiceNames.Evaluator, "Pgkd.Evaluator/EvaluateRoundConsumer.cs", "EvaluateRoundConsumer" },
    };

    /// <summary>The template as YAML: azd's <c>{{ ... }}</c> expressions become a placeholder first (they are not YAML).</summary>
    private static YamlMappingNode Template(string service)
    {
        var path = Path.Combine(Repository.Root, "AppHost", "infra", $"{service}.tmpl.yaml");
        Assert.True(File.Exists(path), $"{path} is missing");
        var yaml = new YamlStream();
        yaml.Load(new StringReader(TemplateExpression().Replace(File.ReadAllText(path), "azd-template-value")));
        return (YamlMappingNode)yaml.Documents.Single().RootNode;
    }

    private static YamlNode At(YamlNode node, params string[] path) =>
        path.Aggregate(node, (n, key) => ((YamlMappingNode)n).Children[new YamlScalarNode(key)]);

    private static string Scalar(YamlNode node, params string[] path) => ((YamlScalarNode)At(node, path)).Value!;

    /// <summary>The name MassTransit's formatter, configured as in ServiceDefaults' AddPgkdBus, gives a consumer of this name.</summary>
    private static string QueueOf(string service, string consumer)
    {
        var formatter = new KebabCaseEndpointNameFormatter(service + "-", includeNamespace: false);
        return consumer switch
        {
            nameof(Consumers.GenerateRoundConsumer) => formatter.Consumer<Consumers.GenerateRoundConsumer>(),
            nameof(Consumers.TrainRoundConsumer) => formatter.Consumer<Consumers.TrainRoundConsumer>(),
            nameof(Consumers.EvaluateRoundConsumer) => formatter.Consumer<Consumers.EvaluateRoundConsumer>(),
            _ => throw new ArgumentException(consumer),
        };
    }

    [Theory]
    [MemberData(nameof(Workers))]
    public void Each_worker_scales_on_the_queue_MassTransit_gives_its_consumer(string service, string source, string consumer)
    {
        // The consumer the service registers has the name the stand-in below mirrors.
        var code = File.ReadAllText(Path.Combine(Repository.Root, "src", source));
        Assert.Contains($"class {consumer}", code);
        Assert.Contains($"AddConsumer<{consumer}>", File.ReadAllText(Path.Combine(Repository.Root, "src", source.Split('/')[0], "Program.cs")));

        var template = Template(service);
        var scale = At(template, "properties", "template", "scale");
        var rule = (YamlMappingNode)((YamlSequenceNode)At(scale, "rules")).Single();
        Assert.Equal("rabbitmq", Scalar(rule, "custom", "type"));
        Assert.Equal(QueueOf(service, consumer), Scalar(rule, "custom", "metadata", "queueName"));
        Assert.Equal($"{service}-{Regex.Replace(consumer.Replace("Consumer", ""), "(?<!^)([A-Z])", "-$1").ToLowerInvariant()}",
            Scalar(rule, "custom", "metadata", "queueName"));
        Assert.Equal("QueueLength", Scalar(rule, "custom", "metadata", "mode"));
        Assert.True(int.Parse(Scalar(rule, "custom", "metadata", "value")) >= 1);
        // The management API counts unacknowledged messages: a replica is not scaled in while it works on the last one.
        Assert.Equal("http", Scalar(rule, "custom", "metadata", "protocol"));

        // The scaler's credentials come from a secret of the same app, as the broker's management URL.
        var auth = (YamlMappingNode)((YamlSequenceNode)At(rule, "custom", "auth")).Single();
        Assert.Equal("host", Scalar(auth, "triggerParameter"));
        var secrets = ((YamlSequenceNode)At(template, "properties", "configuration", "secrets")).Cast<YamlMappingNode>()
            .ToDictionary(s => Scalar(s, "name"), s => Scalar(s, "value"));
        Assert.StartsWith("http://", secrets[Scalar(auth, "secretRef")]);
        Assert.EndsWith("@rabbit:15672", secrets[Scalar(auth, "secretRef")]);

        var min = int.Parse(Scalar(scale, "minReplicas"));
        var max = int.Parse(Scalar(scale, "maxReplicas"));
        Assert.True(max >= Math.Max(1, min));
        // Only the trainer goes to zero (a GPU profile bills nothing while idle); the others keep one warm replica.
        Assert.Equal(service == ServiceNames.Trainer ? 0 : 1, min);
        Assert.Equal(service, Scalar(template, "tags", "azd-service-name"));
    }

    [Theory]
    [MemberData(nameof(Workers))]
    public void Each_template_carries_every_setting_the_manifest_gives_the_service(string service, string source, string consumer)
    {
        _ = (source, consumer);
        var template = Template(service);
        var container = (YamlMappingNode)((YamlSequenceNode)At(template, "properties", "template", "containers")).Single();
        Assert.Equal(service, Scalar(container, "name"));
        var env = ((YamlSequenceNode)At(container, "env")).Cast<YamlMappingNode>().ToList();
        var names = env.Select(e => Scalar(e, "name")).ToHashSet();
        foreach (var variable in manifest.Resource(service).GetProperty("env").EnumerateObject())
            Assert.Contains(variable.Name, names);
        Assert.Contains("AZURE_CLIENT_ID", names); // the managed identity, which every service authenticates with

        // Secrets stay secrets: whatever names a password or connection string is a secretRef, and every ref is declared.
        var declared = ((YamlSequenceNode)At(template, "properties", "configuration", "secrets")).Cast<YamlMappingNode>()
            .Select(s => Scalar(s, "name")).ToHashSet();
        foreach (var e in env)
        {
            var name = Scalar(e, "name");
            if (name.StartsWith("ConnectionStrings__", StringComparison.Ordinal) || name is "RABBIT_PASSWORD" or "RABBIT_URI")
                Assert.Contains(Scalar(e, "secretRef"), declared);
        }
    }

    [GeneratedRegex(@"\{\{[^}]*\}\}")]
    private static partial Regex TemplateExpression();
}
