using System.Net;
using System.Net.Sockets;
using System.Text;
using Spectre.Console;

namespace Pgkd.Cli.Tests;

/// <summary>
/// `pgkd run` sends one Idempotency-Key per invocation and retries network failures with it (issue 19.2): the gateway then
/// answers a retry of a request it already carried out with the same run instead of starting (and paying for) a second.
/// </summary>
public sealed class IdempotentRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pgkd-cli-idempotent-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string[] Files()
    {
        string Write(string name, string content)
        {
            var path = Path.Combine(_dir, name);
            File.WriteAllText(path, content);
            return path;
        }
        return
        [
            "--train", Write("train.jsonl", "{\"text\":\"Stocks fell sharply today\",\"label\":\"Business\"}\n{\"text\":\"The team won the cup final\",\"label\":\"Sports\"}\n"),
            "--val", Write("val.jsonl", "{\"text\":\"Markets rallied again\",\"label\":\"Business\"}\n{\"text\":\"A late goal decided it\",\"label\":\"Sports\"}\n"),
            "--labels", Write("labels.txt", "Business\nSports\n"),
        ];
    }

    /// <summary>A gateway whose first answers are lost: the request arrives, then the connection breaks (or it answers 503).</summary>
    private sealed class FlakyGateway(params Func<HttpResponseMessage?>[] firstAnswers) : HttpMessageHandler
    {
        public List<(string Path, string? Key, string Body)> Requests { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var key = request.Headers.TryGetValues("Idempotency-Key", out var values) ? values.Single() : null;
            Requests.Add((request.RequestUri!.AbsolutePath, key, await request.Content!.ReadAsStringAsync(cancellationToken)));
            if (Requests.Count <= firstAnswers.Length)
                return firstAnswers[Requests.Count - 1]() ?? throw new HttpRequestException("connection reset", new SocketException((int)SocketError.ConnectionReset));
            return new HttpResponseMessage(HttpStatusCode.Accepted)
            {
                Content = new StringContent("""{"runId":"3f2b6c1e-0000-4000-8000-000000000001","status":"Running"}""", Encoding.UTF8, "application/json"),
            };
        }
    }

    private static async Task<int> RunAsync(HttpMessageHandler gateway, string[] args)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(new StringWriter()), Ansi = AnsiSupport.No });
        return await new PgkdCli(console, console, _ => null, gateway).RunAsync(args);
    }

    [Fact]
    public async Task A_run_request_whose_answer_was_lost_is_sent_again_with_the_same_key()
    {
        var gateway = new FlakyGateway(() => null, () => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable));
        Assert.Equal(ExitCodes.Ok, await RunAsync(gateway, ["run", .. Files()]));

        Assert.Equal(3, gateway.Requests.Count);
        Assert.All(gateway.Requests, r => Assert.Equal("/v1/runs", r.Path));
        var key = gateway.Requests[0].Key;
        Assert.False(string.IsNullOrEmpty(key));
        Assert.All(gateway.Requests, r => Assert.Equal(key, r.Key));
        Assert.Single(gateway.Requests.Select(r => r.Body).Distinct());
    }

    [Fact]
    public async Task Each_invocation_has_its_own_key()
    {
        var gateway = new FlakyGateway();
        await RunAsync(gateway, ["run", .. Files()]);
        await RunAsync(gateway, ["run", .. Files()]);
        Assert.Equal(2, gateway.Requests.Select(r => r.Key).Distinct().Count());
    }

    [Fact]
    public async Task A_refusal_is_final_and_not_retried()
    {
        var gateway = new FlakyGateway(() => new HttpResponseMessage(HttpStatusCode.UnprocessableEntity)
        {
            Content = new StringContent("""{"title":"Idempotency-Key reused with a different request","status":422}""", Encoding.UTF8, "application/problem+json"),
        });
        Assert.Equal(ExitCodes.Rejected, await RunAsync(gateway, ["run", .. Files()]));
        Assert.Single(gateway.Requests);
    }
}
