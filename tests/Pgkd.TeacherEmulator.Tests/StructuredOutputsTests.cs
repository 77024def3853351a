using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>
/// Issue 22: the emulator's structured outputs, content filter, output limit and prompt cache, as the OpenAI and Azure
/// OpenAI services behave, over HTTP.
/// </summary>
public sealed class StructuredOutputsTests
{
    private static JsonObject SchemaFormat(JsonNode schema, string name = TeacherReplySchema.Name, bool strict = true) => new()
    {
        ["type"] = "json_schema",
        ["json_schema"] = new JsonObject { ["name"] = name, ["strict"] = strict, ["schema"] = schema },
    };

    private static StringContent Body(TeacherPrompt prompt, JsonNode? responseFormat, string user, int? maxTokens = null)
    {
        var body = new JsonObject
        {
            ["model"] = Emulators.Model,
            ["user"] = user,
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = prompt.System },
                new JsonObject { ["role"] = "user", ["content"] = prompt.User }),
        };
        if (responseFormat is not null) body["response_format"] = responseFormat;
        if (maxTokens is { } m) body["max_completion_tokens"] = m;
        return new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
    }

    [Theory]
    [InlineData("additionalProperties", "'additionalProperties' is required to be supplied and to be false")]
    [InlineData("required", "'required' is required to be supplied and to be an array including every key in properties. Missing 'label'")]
    [InlineData("type", "'strange' is not a valid type")]
    [InlineData("enum", "enum value 3 does not validate against")]
    [InlineData("items", "array schema missing items")]
    [InlineData("root", "the root of the schema must be of type 'object'")]
    public async Task AnInvalidStrictSchema_Is400_InTheServicesShape_NamingTheProblem(string broken, string expected)
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var schema = TeacherReplySchema.For(Emulators.Labels);
        var item = schema["properties"]!["samples"]!["items"]!.AsObject();
        switch (broken)
        {
            case "additionalProperties": item.Remove("additionalProperties"); break;
            case "required": item["required"] = new JsonArray("text"); break;
            case "type": item["properties"]!["text"]!["type"] = "strange"; break;
            case "enum": item["properties"]!["label"]!["enum"]!.AsArray().Add(3); break;
            case "items": schema["properties"]!["samples"]!.AsObject().Remove("items"); break;
            case "root": schema = new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" } }; break;
        }

        using var response = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([1, 1, 1, 1]), SchemaFormat(schema), "bad-schema"));

        Assert.Equal(400, (int)response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var e = error.RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", e.GetProperty("type").GetString());
        Assert.Equal("response_format", e.GetProperty("param").GetString());
        var message = e.GetProperty("message").GetString()!;
        Assert.StartsWith($"Invalid schema for response_format '{TeacherReplySchema.Name}': ", message);
        Assert.Contains(expected, message);
        Assert.Equal(0, server.Stats.Completed);
        Assert.Equal(1, server.Stats.ResponseFormatRefusals);
    }

    [Theory]
    [InlineData("", "Missing required parameter: 'response_format.json_schema.name'")]
    [InlineData("has spaces", "string does not match pattern")]
    public async Task ASchemaNameMissingOrMalformed_Is400(string name, string expected)
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var format = SchemaFormat(TeacherReplySchema.For(Emulators.Labels), name);
        if (name == "") format["json_schema"]!.AsObject().Remove("name");

        using var response = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([1, 1, 1, 1]), format, "bad-name"));

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task RepliesConformToTheSchema_EvenUnderLabelNoiseAndUnknownLabelFaults()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:LabelNoiseRate", "0.5"), ("Emulator:Faults:UnknownLabelRate", "0.5"));
        using var http = Emulators.Http(server);
        var schemaNode = TeacherReplySchema.For(Emulators.Labels);
        using var schema = JsonDocument.Parse(schemaNode.ToJsonString());
        var labels = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([2, 2, 2, 2], round: i + 1), SchemaFormat(schemaNode.DeepClone()), "noisy-schema"));
            Assert.Equal(200, (int)response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            using var content = JsonDocument.Parse(doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
            Assert.True(StructuredOutputs.Conforms(content.RootElement, schema.RootElement), content.RootElement.GetRawText());
            labels.AddRange(content.RootElement.GetProperty("samples").EnumerateArray().Select(s => s.GetProperty("label").GetString()!));
        }
        Assert.Equal(32, labels.Count);
        Assert.All(labels, l => Assert.Contains(l, Emulators.Labels.Names));

        // The same faults without a schema: labels outside the set do occur.
        using var plain = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([8, 8, 8, 8]), new JsonObject { ["type"] = "json_object" }, "noisy-plain"));
        using var plainDoc = JsonDocument.Parse(await plain.Content.ReadAsStringAsync());
        var plainContent = plainDoc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.Contains(FaultOptions.UnknownLabel, plainContent);
    }

    [Fact]
    public async Task ASchemaOfAnotherShape_GetsAConformingInstance()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var schema = JsonNode.Parse("""
            {"type":"object","properties":{"answer":{"type":"string","enum":["yes","no"]},"score":{"type":"number"},
             "tags":{"type":"array","items":{"type":"string"}}},"required":["answer","score","tags"],"additionalProperties":false}
            """)!;

        using var response = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([1, 1, 1, 1]), SchemaFormat(schema, "verdict"), "other-shape"));

        Assert.Equal(200, (int)response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        using var content = JsonDocument.Parse(doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);
        using var schemaDoc = JsonDocument.Parse(schema.ToJsonString());
        Assert.True(StructuredOutputs.Conforms(content.RootElement, schemaDoc.RootElement), content.RootElement.GetRawText());
    }

    [Fact]
    public async Task AServerConfiguredWithoutJsonSchema_RefusesIt_NamingResponseFormat()
    {
        await using var server = await Emulators.StartAsync(("Emulator:ResponseFormats:0", "json_object"), ("Emulator:ResponseFormats:1", "text"));
        using var http = Emulators.Http(server);

        using var refused = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([1, 1, 1, 1]), SchemaFormat(TeacherReplySchema.For(Emulators.Labels)), "refuse"));
        using var plain = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([1, 1, 1, 1]), new JsonObject { ["type"] = "json_object" }, "refuse"));

        Assert.Equal(400, (int)refused.StatusCode);
        using var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync());
        Assert.Equal("response_format", error.RootElement.GetProperty("error").GetProperty("param").GetString());
        Assert.Contains("'json_schema' is not supported", error.RootElement.GetProperty("error").GetProperty("message").GetString());
        Assert.Equal(200, (int)plain.StatusCode);
    }

    [Fact]
    public async Task ContentFilterFaults_RefuseThePromptWith400_OrWithholdTheReply_InAzuresShape()
    {
        await using var server = await Emulators.StartAsync(("Emulator:Faults:PromptFilterRate", "0.5"), ("Emulator:Faults:ContentFilterRate", "1"));
        using var http = Emulators.Http(server);
        int refused = 0, withheld = 0;
        for (var i = 0; i < 8; i++)
        {
            using var response = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([1, 1, 1, 1]), null, "filtered"));
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            if ((int)response.StatusCode == 400)
            {
                var e = doc.RootElement.GetProperty("error");
                Assert.Equal("content_filter", e.GetProperty("code").GetString());
                Assert.Equal("ResponsibleAIPolicyViolation", e.GetProperty("innererror").GetProperty("code").GetString());
                refused++;
            }
            else
            {
                Assert.Equal(200, (int)response.StatusCode);
                var choice = doc.RootElement.GetProperty("choices")[0];
                Assert.Equal("content_filter", choice.GetProperty("finish_reason").GetString());
                Assert.Equal(JsonValueKind.Null, choice.GetProperty("message").GetProperty("content").ValueKind);
                Assert.True(choice.GetProperty("content_filter_results").GetProperty("violence").GetProperty("filtered").GetBoolean());
                withheld++;
            }
        }
        Assert.True(refused > 0 && withheld > 0, $"refused {refused}, withheld {withheld}");
        Assert.Equal(refused, server.Stats.PromptsFiltered);
        Assert.Equal(withheld, server.Stats.RepliesFiltered);
        Assert.Equal(0, server.Engine.UsedCount("filtered")); // nothing was handed out
    }

    [Fact]
    public async Task AReplyLongerThanMaxCompletionTokens_IsCutOffThere_WithFinishReasonLength()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);

        using var response = await http.PostAsync("v1/chat/completions", Body(Emulators.Prompt([4, 4, 4, 4]), new JsonObject { ["type"] = "json_object" }, "cut", maxTokens: 100));

        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var choice = doc.RootElement.GetProperty("choices")[0];
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(100, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var content = choice.GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal(400, content.Length);
        var kept = TeacherReplyParser.ParseTruncated(content, new TeacherReplyContext { Labels = Emulators.Labels });
        Assert.True(kept.IsValidReply);
        Assert.InRange(kept.ItemCount, 1, 15);
        Assert.Equal(1, server.Stats.Truncated);
    }

    [Fact]
    public async Task RepeatedPromptsSharingALongPrefix_ReportCachedTokens_InStepsOf128()
    {
        await using var server = await Emulators.StartAsync();
        using var http = Emulators.Http(server);
        var shared = string.Concat(Enumerable.Repeat("The unchanging part of the prompt, its role, task and labels. ", 100)); // ~6,200 chars
        var cached = new List<int>();
        foreach (var tail in new[] { "Round one asks for this.", "Round two asks for that." })
        {
            using var response = await http.PostAsync("v1/chat/completions",
                Emulators.Body([("system", "You write examples."), ("user", shared + tail)], "cache"));
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var usage = doc.RootElement.GetProperty("usage");
            cached.Add(usage.GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
            Assert.True(cached[^1] <= usage.GetProperty("prompt_tokens").GetInt32());
        }
        Assert.Equal(0, cached[0]);
        Assert.InRange(cached[1], 1024, 6300 / 4);
        Assert.Equal(0, cached[1] % 128);

        // A short prompt is never cached, however often it is sent.
        for (var i = 0; i < 2; i++)
        {
            using var response = await http.PostAsync("v1/chat/completions", Emulators.Body([("user", "Write 2 examples.")], "cache"));
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.Equal(0, doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32());
        }
    }
}
