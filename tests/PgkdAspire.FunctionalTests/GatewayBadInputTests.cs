using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Pgkd.Contracts;

namespace PgkdAspire.FunctionalTests;

/// <summary>
/// Bad input against the real gateway of the shared AppHost (issue 8, points 3 and 4): every refusal is a
/// problem+json with the right status naming the problem, a rejected run stores nothing, and the gateway stays healthy.
/// </summary>
[Collection(DistillationCollection.Name)]
public sealed class GatewayBadInputTests(DistillationRunFixture run)
{
    private const string Json = "application/json";

    public static TheoryData<string, string, string, int, string, string> ClassifyCases() => new()
    {
        // name, content type, body, status, title, a fragment the detail must contain
        { "empty text", Json, """{"text":""}""", 400, "Empty text", "text is empty" },
        { "whitespace only", Json, "{\"text\":\" \\t\\n  \"}", 400, "Empty text", "only whitespace" },
        { "1 MB text", Json, $$"""{"text":"{{new string('a', 1_000_000)}}"}""", 413, "Text too long", "1000000 characters" },
        { "batch over the limit", Json, JsonSerializer.Serialize(new { texts = Enumerable.Repeat("a text", 65) }), 413, "Batch too large", "at most 64" },
        { "empty batch", Json, """{"texts":[]}""", 400, "Nothing to classify", "empty" },
        { "text and texts", Json, """{"text":"a","texts":["b"]}""", 400, "Nothing to classify", "not both" },
        { "invalid JSON", Json, """{"text": "abc" """, 400, "Invalid JSON", "line 1" },
        { "invalid JSON on line 3", Json, "{\n\"text\":\n  nope }", 400, "Invalid JSON", "line 3" },
        { "a JSON value of the wrong type", Json, """{"text": 5}""", 400, "Bad request", "$.text" },
        { "an unknown field", Json, """{"txt": "hello"}""", 400, "Bad request", "txt" },
        { "empty body", Json, "", 400, "Bad request", "body" },
        { "wrong content type", "text/plain", """{"text":"hello"}""", 415, "Unsupported content type", "text/plain" },
        { "form content type", "application/x-www-form-urlencoded", "text=hello", 415, "Unsupported content type", "application/x-www-form-urlencoded" },
        { "a charset other than UTF-8", "application/json; charset=utf-16", """{"text":"hello"}""", 415, "Unsupported content type", "utf-16" },
        { "body over 4 MiB", Json, $$"""{"texts":["{{new string('b', 5_000_000)}}"]}""", 413, "Request body too large", "4194304" },
        { "unknown model (run) id", Json, $$"""{"text":"hello","run":"{{Guid.Empty}}"}""", 404, "No model to serve", Guid.Empty.ToString() },
    };

    [Theory]
    [MemberData(nameof(ClassifyCases))]
    public async Task Classify_answers_bad_input_with_a_problem_naming_it(string name, string contentType, string body, int status,
        string title, string detailContains)
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        // Expect: 100-continue, as a well-behaved client of an oversized body would: the gateway refuses it before the
        // body is sent. Without it the client may still be writing when the 413 closes the connection (broken pipe).
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/classify") { Content = content };
        request.Headers.ExpectContinue = true;
        using var response = await run.Gateway.SendAsync(request);
        await AssertProblemAsync(response, status, title, detailContains, name);
    }

    [Fact]
    public async Task Invalid_UTF8_is_a_400_naming_the_byte()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"text":"caf""").Concat(new byte[] { 0xC3, 0x28, 0xFF }).Concat(Encoding.UTF8.GetBytes("\"}")).ToArray();
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(Json);
        using var response = await run.Gateway.PostAsync("/v1/classify", content);
        await AssertProblemAsync(response, 400, "Invalid UTF-8", "byte 12", "invalid UTF-8");
    }

    [Theory]
    [InlineData(null, "API key required")]
    [InlineData("not-the-key-at-all", "Wrong API key")]
    [InlineData("pgkd-local-dev-ke", "Wrong API key")]       // a prefix of the key
    [InlineData("pgkd-local-dev-key-and-more", "Wrong API key")]
    public async Task A_missing_or_wrong_key_is_401_even_when_the_body_is_also_bad(string? key, string title)
    {
        using var client = run.App.CreateHttpClient(ServiceNames.Gateway);
        foreach (var body in new[] { """{"text":"hello"}""", "{ not json" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/classify") { Content = new StringContent(body, Encoding.UTF8, Json) };
            if (key is not null) request.Headers.Add("X-Api-Key", key);
            using var response = await client.SendAsync(request);
            await AssertProblemAsync(response, 401, title, "X-Api-Key", $"key {key ?? "(none)"}, body {body}");
        }
        using var models = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        if (key is not null) models.Headers.Add("X-Api-Key", key);
        using var modelsResponse = await client.SendAsync(models);
        await AssertProblemAsync(modelsResponse, 401, title, "X-Api-Key", "GET /v1/models");
    }

    [Fact]
    public async Task An_unknown_run_is_a_404_problem()
    {
        var id = Guid.NewGuid();
        using var response = await run.Gateway.GetAsync($"/v1/runs/{id}");
        await AssertProblemAsync(response, 404, "No such run", id.ToString(), "GET unknown run");
    }

    /// <summary>
    /// Seeded fuzzing over request bodies: random bytes, mutations of a valid body, random JSON. The gateway never
    /// answers 5xx, every refusal is problem+json with a title, and it still classifies and reports healthy after.
    /// </summary>
    [Fact]
    public async Task Fuzzed_classify_bodies_never_break_the_gateway()
    {
        var random = new Random(8);
        const string valid = """{"texts":["The striker scored twice","Stocks fell after the report"]}""";
        var statuses = new Dictionary<int, int>();
        for (var i = 0; i < 400; i++)
        {
            var body = (i % 4) switch
            {
                0 => RandomBytes(random),
                1 => Mutate(random, Encoding.UTF8.GetBytes(valid)),
                2 => Encoding.UTF8.GetBytes(RandomJson(random, 0)?.ToJsonString() ?? "null"),
                _ => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    [random.Next(3) == 0 ? "text" : "texts"] = random.Next(3) == 0 ? RandomString(random) : RandomJson(random, 1),
                })),
            };
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue(random.Next(10) == 0 ? "text/plain" : Json);
            using var response = await run.Gateway.PostAsync("/v1/classify", content);
            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            var text = await response.Content.ReadAsStringAsync();
            var shown = Convert.ToBase64String(body.Take(300).ToArray());
            Assert.True(status is 200 or 400 or 404 or 413 or 415, $"case {i} (base64 {shown}) answered {status}: {text}");
            if (status != 200)
            {
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
                var problem = JsonNode.Parse(text)!;
                Assert.False(string.IsNullOrWhiteSpace((string?)problem["title"]), text);
                Assert.False(string.IsNullOrWhiteSpace((string?)problem["detail"]), text);
            }
        }
        // The mix reached the model (200) and both kinds of refusal (400 body, 415 content type).
        Assert.True(statuses.ContainsKey(200) && statuses.ContainsKey(400) && statuses.ContainsKey(415),
            string.Join(", ", statuses.Select(s => $"{s.Key}: {s.Value}")));
        await AssertHealthyAndServingAsync();
    }

    [Fact]
    public async Task After_all_of_it_the_gateway_is_healthy_and_classifies()
    {
        using var content = new StringContent(new string('x', 2_000_000), Encoding.UTF8, "text/plain");
        using var refused = await run.Gateway.PostAsync("/v1/classify", content);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, refused.StatusCode);
        await AssertHealthyAndServingAsync();
    }

    // ----- run creation (point 4) -----

    private static readonly string Labels = """["World", "Sports", "Business"]""";
    private static readonly string Train = JsonSerializer.Serialize(string.Join('\n',
        """{"text":"Elections were held abroad","label":"World"}""",
        """{"text":"The team won the cup","label":"Sports"}""",
        """{"text":"The bank posted a loss","label":"Business"}"""));
    private static readonly string Validation = """[{"text":"Summit talks stall","label":"World"},{"text":"Striker scores twice","label":"Sports"},{"text":"Shares rise","label":"Business"}]""";

    public static TheoryData<string, string, string[]> RunCases() => new()
    {
        // name, request body, fragments that must appear among the problems
        {
            "malformed dataset line",
            $$"""{"labels": {{Labels}}, "train": {{JsonSerializer.Serialize("{\"text\":\"ok\",\"label\":\"World\"}\n{\"text\":\"Cup\",\"label\":\"Sports\"}\n{\"text\": broken\n{\"text\":\"Loss\",\"label\":\"Business\"}")}}, "validation": {{Validation}} }""",
            ["train line 3:"]
        },
        {
            "unknown label",
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": [{"text":"Summit","label":"World"},{"text":"Goal","label":"Sports"},{"text":"Rain tomorrow","label":"Weather"}]}""",
            ["validation line 3:", "Weather"]
        },
        {
            "a label without examples",
            $$"""{"labels": ["World", "Sports", "Business", "Sci/Tech"], "train": {{Train}}, "validation": {{Validation}} }""",
            ["train: label \"Sci/Tech\" has no examples"]
        },
        {
            "duplicate labels",
            $$"""{"labels": ["World", "Sports", "world"], "train": {{Train}}, "validation": {{Validation}} }""",
            ["appears twice"]
        },
        {
            "an empty validation set",
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": []}""",
            ["validation set is empty"]
        },
        {
            "an empty validation JSONL",
            $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": "\n\n"}""",
            ["validation set is empty"]
        },
        {
            "several problems at once",
            $$"""{"labels": {{Labels}}, "train": [{"text":"ok","label":"World"},{"text":"","label":"Sports"}], "validation": [], "configuration": {"maxRounds": -1} }""",
            ["train line 2:", "validation set is empty", "configuration:"]
        },
    };

    [Theory]
    [MemberData(nameof(RunCases))]
    public async Task A_rejected_run_is_a_400_naming_the_problem_and_stores_nothing(string name, string body, string[] expected)
    {
        var before = await StoredBlobsAsync();
        using var response = await run.Gateway.PostAsync("/v1/runs", new StringContent(body, Encoding.UTF8, Json));
        var text = await AssertProblemAsync(response, 400, "The run was rejected", expected[0], name);
        var problems = JsonNode.Parse(text)!["problems"]!.AsArray().Select(p => (string)p!).ToList();
        foreach (var fragment in expected)
            Assert.True(problems.Any(p => p.Contains(fragment, StringComparison.Ordinal)), $"{name}: no problem mentions '{fragment}': {text}");

        var after = await StoredBlobsAsync();
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task Run_creation_with_invalid_JSON_or_a_wrong_field_is_refused_before_storage()
    {
        var before = await StoredBlobsAsync();
        using (var response = await run.Gateway.PostAsync("/v1/runs", new StringContent("""{"labels": ["a","b"], "train": [""", Encoding.UTF8, Json)))
            await AssertProblemAsync(response, 400, "Invalid JSON", "line 1", "truncated run");
        using (var response = await run.Gateway.PostAsync("/v1/runs", new StringContent(
                   $$"""{"labels": {{Labels}}, "train": {{Train}}, "validation": {{Validation}}, "configuration": {"maxRoundz": 2} }""", Encoding.UTF8, Json)))
            await AssertProblemAsync(response, 400, "Bad request", "maxRoundz", "misspelt configuration field");
        using (var response = await run.Gateway.PostAsync("/v1/runs", new StringContent("labels=a", Encoding.UTF8, "text/csv")))
            await AssertProblemAsync(response, 415, "Unsupported content type", "text/csv", "csv run");
        Assert.Equal(before, await StoredBlobsAsync());
    }

    // ----- helpers -----

    private async Task<string> AssertProblemAsync(HttpResponseMessage response, int status, string title, string detailContains, string name)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == status, $"{name}: expected {status}, got {(int)response.StatusCode}: {text}");
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/problem+json",
            $"{name}: content type {response.Content.Headers.ContentType}: {text}");
        var problem = JsonNode.Parse(text)!;
        Assert.True((string?)problem["title"] == title, $"{name}: title '{problem["title"]}', expected '{title}': {text}");
        Assert.True((int?)problem["status"] == status, $"{name}: {text}");
        Assert.True(((string?)problem["detail"] ?? "").Contains(detailContains, StringComparison.Ordinal),
            $"{name}: detail does not mention '{detailContains}': {text}");
        return text;
    }

    private async Task AssertHealthyAndServingAsync()
    {
        using var health = await run.Gateway.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using var classify = await run.Gateway.PostAsJsonAsync("/v1/classify", new { text = "The striker scored twice in the final" });
        Assert.True(classify.StatusCode == HttpStatusCode.OK, await classify.Content.ReadAsStringAsync());
    }

    private async Task<SortedSet<string>> StoredBlobsAsync()
    {
        var container = new BlobServiceClient(await run.App.GetConnectionStringAsync(ServiceNames.Blobs)).GetBlobContainerClient("runs");
        var names = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var blob in container.GetBlobsAsync()) names.Add(blob.Name);
        return names;
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(0, 200)];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[] valid)
    {
        var bytes = valid.ToList();
        for (var edits = random.Next(1, 6); edits > 0 && bytes.Count > 0; edits--)
        {
            var at = random.Next(bytes.Count);
            switch (random.Next(4))
            {
                case 0: bytes.RemoveAt(at); break;
                case 1: bytes.Insert(at, (byte)random.Next(256)); break;
                case 2: bytes[at] = (byte)random.Next(256); break;
                default: bytes.RemoveRange(at, bytes.Count - at); break;
            }
        }
        return bytes.ToArray();
    }

    private static string RandomString(Random random)
    {
        const string alphabet = "abc xyz \t\n\"\\\u00e9\u4e2d\ud83d\ude00{}[]:,";
        return new string(Enumerable.Range(0, random.Next(0, 40)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
    }

    private static JsonNode? RandomJson(Random random, int depth) => random.Next(depth > 3 ? 4 : 7) switch
    {
        0 => null,
        1 => JsonValue.Create(random.Next(-1000, 1000)),
        2 => JsonValue.Create(random.Next(2) == 0),
        3 => JsonValue.Create(RandomString(random)),
        4 => new JsonArray(Enumerable.Range(0, random.Next(0, 5)).Select(_ => RandomJson(random, depth + 1)).ToArray()),
        _ => new JsonObject(Enumerable.Range(0, random.Next(0, 4)).Select(i =>
            new KeyValuePair<string, JsonNode?>(i == 0 && random.Next(2) == 0 ? "texts" : RandomString(random) + i, RandomJson(random, depth + 1)))),
    };
}
