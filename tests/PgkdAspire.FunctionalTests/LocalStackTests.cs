using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Azure.Storage.Blobs;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Contracts;
using PgkdAspire.AppHost.LocalStack;

namespace PgkdAspire.FunctionalTests;

public sealed class LocalStackTests
{
    [Fact]
    public async Task Whole_system_starts_answers_ping_through_RabbitMQ_and_Azurite_and_leaves_no_process()
    {
        var args = TestAppHostArguments.Create();
        try
        {
            var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(args.ToArgs());
            await using (var app = await appHost.BuildAsync())
            {
                await app.StartAsync();
                await AppHostResources.WaitForAllHealthyAsync(app.ResourceNotifications.WaitForResourceHealthyAsync, TimeSpan.FromMinutes(3));

                // The gateway writes a blob, reads it back, and every pipeline service answers with its hash.
                // It makes every service work, so a caller without the key is refused before anything happens.
                using var http = app.CreateHttpClient(ServiceNames.Gateway);
                using (var anonymous = await http.PostAsync("/api/diagnostics/ping?timeoutSeconds=30", null))
                    Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
                http.DefaultRequestHeaders.Add("X-Api-Key", DistillationRunFixture.ApiKey);
                using var response = await http.PostAsync("/api/diagnostics/ping?timeoutSeconds=30", null);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, body);
                // The answer names the blob, not the storage account's address.
                Assert.DoesNotContain("http://", body);
                Assert.DoesNotContain("127.0.0.1", body);
                using var report = JsonDocument.Parse(body);
                var root = report.RootElement;
                var written = root.GetProperty("blobWritten").GetString();
                var sha = root.GetProperty("blobSha256").GetString();
                Assert.StartsWith("pgkd ping ", written);
                Assert.Equal(written, root.GetProperty("blobReadBack").GetString());
                Assert.Empty(root.GetProperty("silent").EnumerateArray());
                var answers = root.GetProperty("answers").EnumerateArray()
                    .ToDictionary(a => a.GetProperty("service").GetString()!, a => a);
                Assert.Equal(ServiceNames.PingResponders.Order(), answers.Keys.Order());
                foreach (var (service, answer) in answers)
                {
                    Assert.True(answer.GetProperty("ok").GetBoolean(), $"{service}: {answer}");
                    Assert.Equal(sha, answer.GetProperty("blobSha256").GetString());
                }
                Assert.True(root.GetProperty("allOk").GetBoolean());

                // At start every pipeline service warmed its bus (no first message pays for it), and the gateway's own
                // check heard from each of them (Diagnostics/PipelinePing.cs). Deadlines are generous: a slow machine only waits longer.
                await WaitForLogAsync(app, ServiceNames.Gateway, $"Pipeline check at start: {string.Join(", ", PipelineServices)} answered");
                foreach (var service in PipelineServices)
                {
                    await WaitForLogAsync(app, service, $"Warmed up the bus ({BusMessages} contracts");
                    await WaitForLogAsync(app, service, $"Warmed up {BusMessages} publish endpoints");
                }

                // Azurite keeps what a client writes: write and read back with the connection string services get.
                var blobs = new BlobServiceClient(await app.GetConnectionStringAsync(ServiceNames.Blobs));
                var container = blobs.GetBlobContainerClient("functional-tests");
                await container.CreateIfNotExistsAsync();
                var content = $"round trip {Guid.NewGuid()}";
                await container.GetBlobClient("roundtrip.txt").UploadAsync(BinaryData.FromString(content), overwrite: true);
                Assert.Equal(content, (await container.GetBlobClient("roundtrip.txt").DownloadContentAsync()).Value.Content.ToString());

                Assert.NotEmpty(args.LiveProcesses());
                await app.StopAsync();
            }

            // After shutdown nothing of this AppHost runs: no broker, no epmd, no azurite.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            IReadOnlyList<string> left;
            while ((left = args.LiveProcesses()).Count > 0 && DateTime.UtcNow < deadline)
                await Task.Delay(500);
            Assert.True(left.Count == 0, "still running after shutdown:\n" + string.Join("\n", left));
        }
        finally
        {
            if (Directory.Exists(args.DataDirectory)) Directory.Delete(args.DataDirectory, recursive: true);
        }
    }

    private static readonly string[] PipelineServices = [ServiceNames.Orchestrator, ServiceNames.Generator, ServiceNames.Trainer, ServiceNames.Evaluator];
    private const int BusMessages = 11; // the records of Pgkd.Contracts: StartRun ... RunCompleted, Ping and Pong

    private static async Task WaitForLogAsync(DistributedApplication app, string resource, string text)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var logs = app.Services.GetRequiredService<ResourceLoggerService>();
        var seen = new List<string>();
        try
        {
            // By the model's resource, not its name: a project's log stream is kept under its running instance's name.
            var model = app.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == resource);
            await foreach (var batch in logs.WatchAsync(model).WithCancellation(deadline.Token))
            {
                if (batch.Any(line => line.Content.Contains(text, StringComparison.Ordinal)))
                    return;
                seen.AddRange(batch.Select(line => line.Content));
            }
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
        }
        Assert.Fail($"{resource} never logged \"{text}\"; its last lines:\n{string.Join("\n", seen.TakeLast(30))}");
    }

    [Fact]
    public async Task A_busy_port_stops_the_AppHost_with_a_message_naming_the_port_and_the_fix()
    {
        var args = TestAppHostArguments.Create();
        using var squatter = new TcpListener(IPAddress.Loopback, args.BlobPort);
        squatter.Start();

        var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var appHost = await DistributedApplicationTestingBuilder.CreateAsync<Projects.PgkdAspire_AppHost>(args.ToArgs());
            await using var app = await appHost.BuildAsync();
        });

        var local = FindLocalStackException(error);
        Assert.Contains($"port {args.BlobPort} in use", local.Message);
        Assert.Contains("--blob-port", local.Message);
        Assert.Empty(args.LiveProcesses());
    }

    private static LocalStackException FindLocalStackException(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
            if (e is LocalStackException local) return local;
        if (error is AggregateException aggregate && aggregate.InnerExceptions.OfType<LocalStackException>().FirstOrDefault() is { } found)
            return found;
        throw new Xunit.Sdk.XunitException($"expected a LocalStackException, got: {error}");
    }
}
