using Pgkd.Core.Teacher;
namespace Pgkd.Generator.Teacher;

/// <summary>
/// Configuration section <c>Teacher</c> (the connection itself is <c>ConnectionStrings:teacher</c>, see
/// <see cref="TeacherConnection"/>):
/// <code>
/// "Teacher": {
///   "MaxRetries": 5, "BaseDelay": "00:00:01", "MaxDelay": "00:00:30", "MaxRetryAfter": "00:01:00",
///   "RequestTimeout": "00:02:00", "MaxWaitWithoutReply": "00:05:00", "MaxRoundTime": "01:00:00",
///   "Temperature": 0.7, "MaxOutputTokens": null, "ResponseFormat": "Auto",
///   "Budget": { "MaxTotalTokens": 2000000, "MaxCostUsd": 5.0 },
///   "Prices": { "gpt-4o-mini": { "InputPerMillion": 0.15, "OutputPerMillion": 0.60 }, "*": { ... } }
/// }
/// </code>
/// </summary>
public sealed class TeacherClientOptions
{
    public const string Section = "Teacher";

    /// <summary>Retries after the first attempt on 429, 408, 5xx, timeouts and network errors.</summary>
    public int MaxRetries { get; set; } = 5;

    /// <summary>
    /// The median wait before the first retry: Polly's exponential backoff with (decorrelated) jitter roughly doubles
    /// the median for each retry after it, and caps every wait at <see cref="MaxDelay"/>.
    /// </summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A Retry-After (or retry-after-ms) is honoured up to this long.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>One attempt's limit; a slower answer counts as a timeout and is retried.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// A round fails (the run ends Failed, naming the teacher, the round and the last error) when no teacher request
    /// has succeeded for this long, counted from the round's start and from each reply. This bounds a teacher that
    /// stays down however its attempts fail (hanging until <see cref="RequestTimeout"/> or refused at once), while a
    /// big round against a slow but answering teacher goes on. The round also fails at once when one request runs out
    /// of <see cref="MaxRetries"/>. Neither failure is retried by the bus: that would only multiply the wait.
    /// </summary>
    public TimeSpan MaxWaitWithoutReply { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The most teacher time one round may take in all, even while the teacher keeps answering; then the round fails.</summary>
    public TimeSpan MaxRoundTime { get; set; } = TimeSpan.FromHours(1);

    public float? Temperature { get; set; } = 0.7f;

    public int? MaxOutputTokens { get; set; }

    /// <summary>
    /// How the teacher is asked for JSON. Auto (the default) asks for a strict <c>json_schema</c> whose <c>label</c> is an
    /// enum of the run's labels; a server that refuses it is asked in <c>json_object</c>, then in plain text, found out once
    /// per deployment and remembered. JsonSchema, JsonObject or Text force one mode.
    /// </summary>
    public TeacherResponseFormat ResponseFormat { get; set; } = TeacherResponseFormat.Auto;

    /// <summary>The older switch: false sends no <c>response_format</c> (as <see cref="ResponseFormat"/> Text does).</summary>
    public bool JsonMode { get; set; } = true;

    public TeacherBudget Budget { get; set; } = TeacherBudget.Unlimited;

    public Dictionary<string, TokenPrice> Prices { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Seed of the backoff jitter (Polly's retry randomizer); null draws one (tests fix it).</summary>
    public int? JitterSeed { get; set; }

    /// <summary>Section <c>Teacher:Batch</c>: how rounds of runs with <c>batchApi</c> wait for the Batch API.</summary>
    public TeacherBatchOptions Batch { get; set; } = new();

    /// <summary>The generator checks the connection with one tiny request at start-up and stops on a configuration error.</summary>
    public bool VerifyOnStartup { get; set; } = true;
}

/// <summary>Section <c>Teacher:Batch</c>.</summary>
public sealed class TeacherBatchOptions
{
    /// <summary>How often a running batch is asked for its status.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest a round waits for its batch; then the batch is cancelled and the round goes on with what it answered
    /// (and fails, naming this setting, when that is nothing). The default stays under RabbitMQ's 30-minute consumer
    /// timeout, which ends a delivery held longer; a step that dies while waiting resumes the same batch.
    /// </summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromMinutes(25);
}
