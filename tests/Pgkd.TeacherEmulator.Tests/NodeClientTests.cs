using System.Diagnostics;
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
        var root = SharedData.FindRepositoryRoot() ?? throw new InvalidOperationException("PgkdAspire.sln not found above " + AppContext.BaseDirectory);
        var modules = Path.Combine(root, ".tools", "node_modules");
        Assert.True(File.Exists(Path.Combine(modules, "openai", "package.json")),
            $"The npm openai package is missing from {modules}: run scripts/bootstrap.sh (./build.sh test runs it first).");

        await using var server = await Emulators.StartAsync();
        var script = Path.Combine(AppContext.BaseDirectory, "node", "chat.mjs");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, server.Address.ToString(), Emulators.Key, modules }) start.ArgumentList.Add(arg);
        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await node.WaitForExitAsync(timeout.Token);
        output.WriteLine(await stdout);
        output.WriteLine(await stderr);
        Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}: {await stderr}");

        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
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
        var root = SharedData.FindRepositoryRoot() ?? throw new InvalidOperationException("PgkdAspire.sln not found above " + AppContext.BaseDirectory);
        var modules = Path.Combine(root, ".tools", "node_modules");
        Assert.True(File.Exists(Path.Combine(modules, "openai", "package.json")),
            $"The npm openai package is missing from {modules}: run scripts/bootstrap.sh (./build.sh test runs it first).");

        await using var server = await Emulators.StartAsync();
        var script = Path.Combine(AppContext.BaseDirectory, "node", "batch.mjs");
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { script, server.Address.ToString(), Emulators.Key, modules }) start.ArgumentList.Add(arg);
        using var node = Process.Start(start)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await node.WaitForExitAsync(timeout.Token);
        output.WriteLine(await stdout);
        output.WriteLine(await stderr);
        Assert.True(node.ExitCode == 0, $"node exited {node.ExitCode}: {await stderr}");

        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
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
}
