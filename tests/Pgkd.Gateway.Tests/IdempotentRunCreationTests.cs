using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Azure.Storage.Blobs.Models;
using MassTransit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Pgkd.Contracts;
using Pgkd.Storage;

namespace Pgkd.Gateway.Tests;

/// <summary>
/// <c>POST /v1/runs</c> with an <c>Idempotency-Key</c> (issue 19.2), against a real Azurite: a retry returns the same run and
/// stores nothing, another body under the same key is refused, racing twins make one run. The bus is a recorder.
/// </summary>
public sealed class IdempotentRunCreationTests(AzuriteFixture azurite) : IClassFixture<AzuriteFixture>, IDisposable
{
    private readonly StorageGatewayHost _host = new(azurite.ConnectionString);

    private static string Body(string firstText = "The striker scored twice in the final") => $$$"""
        {"labels": ["World", "Sports"],
         "train": [{"text": "{{{firstText}}}", "label": "Sports"}, {"text": "Parliament votes on the new budget", "label": "World"}],
         "validation": [{"text": "The keeper saved a penalty", "label": "Sports"}, {"text": "Elections are called", "label": "World"}],
         "configuration": {"maxRounds": 1, "selectionShare": 0}}
        """;

    private async Task<HttpResponseMessage> PostAsync(HttpClient client, string body, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/runs") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Api-Key", GatewayHost.Key);
        if (key is not null) request.Headers.Add("Idempotency-Key", key);
        return await client.SendAsync(request);
    }

    private async Task<List<string>> BlobsAsync()
    {
        var container = azurite.Blobs.GetBlobContainerClient(RunBlobLayout.Container);
        if (!(await container.ExistsAsync()).Value) return [];
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, null, default)) names.Add(item.Name);
        return names;
    }

    private static async Task<Guid> RunIdOf(HttpResponseMessage response) =>
        (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("runId").GetGuid();

    [Fact]
    public async Task A_retry_with_the_same_key_and_body_returns_the_same_run_and_stores_nothing()
    {
        using var client = _host.CreateClient();
        var key = Guid.NewGuid().ToString();

        using var first = await PostAsync(client, Body(), key);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var runId = await RunIdOf(first);
        var stored = await BlobsAsync();
        Assert.Contains(RunBlobLayout.Manifest(runId), stored);

        // The same body spaced differently is the same request.
        using var retry = await PostAsync(client, Body().Replace("\n", " ").Replace("  ", " "), key);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal(runId, await RunIdOf(retry));
        Assert.Equal(stored, await BlobsAsync());
        Assert.Equal([runId], _host.Published.OfType<StartRun>().Select(s => s.RunId));
    }

    [Fact]
    public async Task The_same_key_with_another_body_is_refused_with_422_naming_the_key()
    {
        using var client = _host.CreateClient();
        var key = "client-retry-" + Guid.NewGuid();
        using var first = await PostAsync(client, Body(), key);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        var before = await BlobsAsync();

        using var other = await PostAsync(client, Body("A different first training text"), key);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, other.StatusCode);
        Assert.Equal("application/problem+json", other.Content.Headers.ContentType?.MediaType);
        var problem = await other.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains(key, problem.GetProperty("detail").GetString());
        Assert.Equal(key, problem.GetProperty("idempotencyKey").GetString());
        Assert.Equal(before, await BlobsAsync());
    }

    [Fact]
    public async Task Concurrent_requests_with_one_key_make_one_run()
    {
        using var client = _host.CreateClient();
        var key = Guid.NewGuid().ToString();
        var before = (await BlobsAsync()).Where(n => n.EndsWith("/manifest.json", StringComparison.Ordinal)).ToHashSet();

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Task.Run(() => PostAsync(client, Body(), key))));
        var ids = new HashSet<Guid>();
        foreach (var response in responses)
        {
            Assert.True(response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.OK, $"{response.StatusCode}");
            ids.Add(await RunIdOf(response));
            response.Dispose();
        }
        var runId = Assert.Single(ids);
        var created = (await BlobsAsync()).Where(n => n.EndsWith("/manifest.json", StringComparison.Ordinal) && !before.Contains(n)).ToList();
        Assert.Equal([RunBlobLayout.Manifest(runId)], created);
        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task Without_a_key_every_post_is_a_new_run()
    {
        using var client = _host.CreateClient();
        using var a = await PostAsync(client, Body(), key: null);
        using var b = await PostAsync(client, Body(), key: null);
        Assert.Equal(HttpStatusCode.Accepted, a.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, b.StatusCode);
        Assert.NotEqual(await RunIdOf(a), await RunIdOf(b));
    }

    [Theory]
    [InlineData("has space")]
    [InlineData("key\u007fwith-delete")]
    public async Task A_malformed_key_is_a_400_and_stores_nothing(string key)
    {
        using var client = _host.CreateClient();
        var before = await BlobsAsync();
        using var response = await PostAsync(client, Body(), key);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Idempotency-Key", await response.Content.ReadAsStringAsync());
        Assert.Equal(before, await BlobsAsync());
    }

    [Fact]
    public async Task A_key_longer_than_255_characters_is_refused()
    {
        using var client = _host.CreateClient();
        using var response = await PostAsync(client, Body(), new string('k', 256));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    public void Dispose() => _host.Dispose();

    /// <summary>The gateway on a real blob store, with a bus that only records what is published.</summary>
    private sealed class StorageGatewayHost(string blobs) : GatewayHost(Key)
    {
        public ConcurrentQueue<object> Published { get; } = new();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("ConnectionStrings:blobs", blobs);
            builder.ConfigureTestServices(services =>
            {
                var recorder = DispatchProxy.Create<IPublishEndpoint, PublishRecorder>();
                ((PublishRecorder)(object)recorder).Published = Published;
                services.AddSingleton(recorder);
            });
        }
    }

    /// <summary>Every IPublishEndpoint overload: records the message (the first argument) and completes.</summary>
    public class PublishRecorder : DispatchProxy
    {
        public ConcurrentQueue<object> Published { get; set; } = null!;

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name == nameof(IPublishEndpoint.Publish) && args is [{ } message, ..]) Published.Enqueue(message);
            return targetMethod?.ReturnType == typeof(Task) ? Task.CompletedTask : null;
        }
    }
}
