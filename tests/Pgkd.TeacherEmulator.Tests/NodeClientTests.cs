using System.Text.Json;
using Pgkd.Core.Teacher;
using Xunit.Abstractions;

namespace Pgkd.TeacherEmulator.Tests;

/// <summary>A client written elsewhere: the npm <c>openai</c> package (installed into .tools/ by scripts/bootstrap.sh) talks to the emulator.</summary>
public sealed class NodeClientTests(ITestOutputHelper output)
{
    [Fact]
    public async Task NpmOpenAiPackage_CompletesAChat_OnBothRoutes()
    {
        await using var server = await Emulators.StartAsync();
        var lines = await RunNodeAsync("chat.mjs", server, TimeSpan.FromSeconds(60));
        Assert.Equal(["openai", "azure"], lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("route").GetString()!));
        foreach (var line in lines)
        {
            var result = JsonDocument.Parse(line).RootElement;
            Assert.True(result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 0);
            Assert.True(result.GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);
            var parsed = TeacherReplyParser.Parse(result.GetProperty("content").GetString(), new TeacherReplyContext { Labels = Emulators.Labels });
            Assert.True(parsed.IsValidReply, parsed.ReplyError);
            Assert.Equal(4, parsed.Accepted.Count);
        }
        Assert.Equal(2, server.Stats.Completed);
    }

    [Fact]
    public async Task NpmOpenAiPackage_RunsABatch_UploadCreatePollDownload_OnBothRoutes()
    {
        await using var server = await Emulators.StartAsync();
        var lines = await RunNodeAsync("batch.mjs", server, TimeSpan.FromSeconds(120));
        Assert.Equal(["openai", "azure"], lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("route").GetString()!));
        foreach (var line in lines)
        {
            var batch = JsonDocument.Parse(line).RootElement;
            Assert.Equal("batch", batch.GetProperty("purpose").GetString());
            Assert.Equal("completed", batch.GetProperty("status").GetString());
            Assert.Equal(3, batch.GetProperty("counts").GetProperty("completed").GetInt32());
            var results = batch.GetProperty("results").EnumerateArray().ToList();
            Assert.Equal(["request-1", "request-2", "request-3"], results.Select(r => r.GetProperty("custom_id").GetString()!).Order());
            foreach (var result in results)
            {
                Assert.Equal(200, result.GetProperty("status_code").GetInt32());
                Assert.True(result.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 0);
                var parsed = TeacherReplyParser.Parse(result.GetProperty("content").GetString(), new TeacherReplyContext { Labels = Emulators.Labels });
                Assert.True(parsed.IsValidReply, parsed.ReplyError);
                Assert.Equal(4, parsed.Accepted.Count);
            }
        }
        Assert.Equal(6, server.Stats.Completed);
    }

    /// <summary>Runs one of the node/ scripts against the emulator with the npm openai package; its output lines.</summary>
    private async Task<string[]> RunNodeAsync(string scriptName, TeacherEmulatorServer server, TimeSpan timeout)
    {
        var modules = Repository.Path(".tools", "node_modules");
        Assert.True(File.Exists(Path.Combine(modules, "openai", "package.json")),
            $"The npm openai package is missing from {modules}: run scripts/bootstrap.sh (./build.sh test runs it first).");
        var script = Path.Combine(AppContext.BaseDirectory, "node", scriptName);
        var node = await ExternalProcess.RunAsync("node", [script, server.Address.ToString(), Emulators.Key, modules], timeout);
        output.WriteLine(node.StandardOutput);
        output.WriteLine(node.StandardError);
        Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}: {node.StandardError}");
        return node.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
