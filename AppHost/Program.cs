// The system diagram. A teacher LLM writes training data for a small student classifier, guided each round by
// the student's validation report and hard negatives (PGKD). Services talk only through RabbitMQ and share
// datasets and checkpoints in blob storage.
using Pgkd.Contracts;
using PgkdAspire.AppHost;
using PgkdAspire.AppHost.Dashboard;
using PgkdAspire.AppHost.LocalStack;

var builder = DistributedApplication.CreateBuilder(args);

// How many processes each service runs: --replicas:trainer=2 (Replicas__trainer=2), default 1; checked before anything starts.
ServiceReplicas replicas;
try
{
    replicas = ServiceReplicas.FromConfiguration(builder.Configuration);
}
catch (ArgumentException problem) when (LocalStackOptions.IsStandalone)
{
    Console.Error.WriteLine(problem.Message);
    return 2;
}

// Infrastructure. In the cloud: a RabbitMQ container and Azure Storage / Azure OpenAI by connection string.
// Locally: the same software as plain processes (no Docker), Debian's rabbitmq-server and npm's Azurite.
IResourceBuilder<IResourceWithConnectionString> rabbit, blobs;
if (builder.ExecutionContext.IsPublishMode)
{
    // The password is generated at deploy time and kept as a secret; the broker's data lives on a named volume.
    var rabbitUser = builder.AddParameter("rabbit-user", "pgkd", publishValueAsDefault: true);
    rabbit = builder.AddRabbitMQ(ServiceNames.Rabbit, userName: rabbitUser)
        .WithDataVolume("pgkd-rabbit-data")
        .WithManagementPlugin();
    blobs = builder.AddConnectionString(ServiceNames.Blobs);
}
else
{
    var local = LocalStackOptions.FromConfiguration(builder.Configuration, Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..")));
    try
    {
        local.EnsureCanStart();
    }
    catch (LocalStackException problem) when (LocalStackOptions.IsStandalone)
    {
        // Run by a user: the message names the problem and the fix; a stack trace would only bury it.
        Console.Error.WriteLine(problem.Message);
        return 2;
    }
    rabbit = builder.AddLocalRabbitMQ(ServiceNames.Rabbit, local);
    blobs = builder.AddAzuriteBlobs(ServiceNames.Blobs, local);
}

// Every service uses the bus and the blobs, waits for both, and is healthy only once it reaches them.
IResourceBuilder<ProjectResource> AddService<TProject>(string name) where TProject : IProjectMetadata, new()
{
    var service = builder.AddProject<TProject>(name)
        .WithReference(rabbit).WaitFor(rabbit)
        .WithReference(blobs).WaitFor(blobs)
        .WithHttpHealthCheck("/health");
    // Locally every service serves plain HTTP on loopback: no HTTPS certificate set-up, so the AppHost does not look for
    // a trusted development certificate, and the dashboard shows no "No trusted development certificate" banner.
    if (!builder.ExecutionContext.IsPublishMode) service.WithoutHttpsCertificate();
    // Replicas compete for the service's queues. Deployed, the workers' KEDA rules set the count instead (README, Scaling).
    if (!builder.ExecutionContext.IsPublishMode && replicas.Of(name) > 1) service.WithReplicas(replicas.Of(name));
    return service;
}

// The teacher, as ConnectionStrings:teacher = "Endpoint=...;Deployment=...;Key=...;Kind=AzureOpenAI|OpenAI"
// (src/Pgkd.Generator/Teacher/TeacherConnection.cs). In the cloud: a secret connection-string parameter, which
// infra fills with its Azure OpenAI output (no Key: managed identity via Entra ID); any OpenAI-compatible endpoint
// works too. Offline: our emulator on its Azure route, guarded by a generated secret key.
var generator = AddService<Projects.Pgkd_Generator>(ServiceNames.Generator);
// The teacher's deployment name, for the gateway's cost forecasts (its tokenizer and price); deployed: the gateway's default.
string? teacherModel = null;
// A local run uses a real teacher too when ConnectionStrings:teacher is set (user secrets or environment).
if (builder.ExecutionContext.IsPublishMode || !string.IsNullOrWhiteSpace(builder.Configuration["ConnectionStrings:teacher"]))
{
    generator.WithReference(builder.AddConnectionString("teacher"));
    if (!builder.ExecutionContext.IsPublishMode)
        teacherModel = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = builder.Configuration["ConnectionStrings:teacher"] }
            .TryGetValue("Deployment", out var deployment) ? deployment?.ToString() : null;
}
else
{
    var key = builder.AddParameter("teacher-key", new GenerateParameterDefault { MinLength = 32, Special = false }, secret: true);
    var teacherEmulator = AddService<Projects.Pgkd_TeacherEmulator>(ServiceNames.TeacherEmulator)
        .WithEnvironment("Emulator__ApiKey", key)
        .WithTeacherFaults(builder.Configuration); // --teacher-faults:ServerErrorRate=0.2 and the like: docs/reliability.md
    // Your own labeled texts for the emulator to answer from in every run (--teacher-pool FILE, JSONL); one run's own
    // pool travels with that run instead (pgkd run --pool FILE). Checked here, so a bad line stops the start at once.
    if (builder.Configuration["teacher-pool"] is { Length: > 0 } poolFile)
    {
        try
        {
            teacherEmulator.WithEnvironment("Emulator__PoolPath", TeacherPoolFile.Check(poolFile, Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."))));
        }
        catch (ArgumentException problem) when (LocalStackOptions.IsStandalone)
        {
            Console.Error.WriteLine(problem.Message);
            return 2;
        }
    }
    var teacher = builder.AddConnectionString("teacher",
        ReferenceExpression.Create($"Endpoint={teacherEmulator.GetEndpoint("http")};Deployment=pgkd-teacher;Key={key};Kind=AzureOpenAI"));
    generator.WithReference(teacher).WaitFor(teacherEmulator);
    teacherModel = "pgkd-teacher";
}

// Drives every run through its rounds: state in the run manifest (blobs), steps as commands to the services below.
var orchestrator = AddService<Projects.Pgkd_Orchestrator>(ServiceNames.Orchestrator);
AddService<Projects.Pgkd_Trainer>(ServiceNames.Trainer);
AddService<Projects.Pgkd_Evaluator>(ServiceNames.Evaluator);
// Every /v1 call needs this key: locally the documented one in appsettings.json, deployed a secret azd asks for.
var gatewayKey = builder.AddParameter("gateway-api-key", secret: true);
// The gateway waits for the orchestrator: a StartRun published before the orchestrator's queue is bound would be lost.
var gateway = AddService<Projects.Pgkd_Gateway>(ServiceNames.Gateway)
    .WaitFor(orchestrator)
    .WithEnvironment("Gateway__ApiKey", gatewayKey)
    .WithExternalHttpEndpoints();
if (teacherModel is not null) gateway.WithEnvironment("Teacher__Model", teacherModel);
// Gateway settings given to the AppHost reach the gateway (./build.sh run -- --Gateway:Inference:QueueCapacity=256);
// the key is a parameter, never a setting.
foreach (KeyValuePair<string, string?> setting in Microsoft.Extensions.Configuration.ConfigurationExtensions.AsEnumerable(builder.Configuration.GetSection("Gateway")))
    if (setting.Value is { } value && !setting.Key.Equals("Gateway:ApiKey", StringComparison.OrdinalIgnoreCase))
        gateway.WithEnvironment(setting.Key.Replace(":", "__", StringComparison.Ordinal), value);
// The dashboard tells the story: commands on the gateway start a demo run and give the latest report (Dashboard/).
if (!builder.ExecutionContext.IsPublishMode)
    gateway.WithPgkdCommands(gatewayKey, Path.GetFullPath(Path.Combine(builder.AppHostDirectory, "..")));
// Behind Container Apps' ingress the client's address comes in X-Forwarded-For: the failed-sign-in limit is per client.
if (builder.ExecutionContext.IsPublishMode) gateway.WithEnvironment("ASPNETCORE_FORWARDEDHEADERS_ENABLED", "true");

builder.Build().Run();
return 0;
