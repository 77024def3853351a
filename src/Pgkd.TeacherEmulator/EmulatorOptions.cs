namespace Pgkd.TeacherEmulator;

/// <summary>
/// Configuration section <c>Emulator</c>. Every key can also come from the environment
/// (<c>Emulator__ApiKey</c>, <c>Emulator__Faults__TooManyRequestsRate</c>, ...).
/// </summary>
public sealed class EmulatorOptions
{
    public const string Section = "Emulator";

    /// <summary>
    /// The key every request must carry, as <c>api-key: KEY</c> (Azure style) or
    /// <c>Authorization: Bearer KEY</c> (OpenAI style). Required: the emulator does not start without it.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// Deployment names (Azure route) and model names (OpenAI route) that exist. Anything else is
    /// answered 404 like the real services do, so a wrong <c>Deployment=</c> fails fast.
    /// </summary>
    public List<string> Deployments { get; set; } = [];

    /// <summary>
    /// Labeled JSONL the emulator answers from. Empty: AG News <c>pool.jsonl</c> from ../shared/data when
    /// present, otherwise the demo dataset shipped with the emulator (<c>DemoData/pool.jsonl</c>).
    /// </summary>
    public string? PoolPath { get; set; }

    /// <summary>
    /// Labeled files whose texts the emulator never returns (compared by <c>TextHash</c> of the
    /// normalised text): the validation and test data. Empty: <c>seed_train.jsonl</c>,
    /// <c>seed_val.jsonl</c> and <c>test.jsonl</c> beside the pool, where they exist.
    /// </summary>
    public List<string> ExcludePaths { get; set; } = [];

    /// <summary>Seed of every random choice (picks, label noise, faults): same seed and same calls, same replies.</summary>
    public int Seed { get; set; } = 17;

    /// <summary>Answer at most this many samples per request (a real model's output limit).</summary>
    public int MaxSamplesPerReply { get; set; } = 256;

    public FaultOptions Faults { get; set; } = new();

    /// <summary>
    /// The <c>response_format</c> types this server accepts (<c>json_schema</c>, <c>json_object</c>, <c>text</c>). Leave
    /// one out to play a server that refuses it: it answers 400 naming <c>response_format</c>, as older OpenAI-compatible
    /// servers do. The Azure route also refuses json_schema for api-versions before 2024-08-01-preview, as Azure does.
    /// </summary>
    public List<string> ResponseFormats { get; set; } = [];

    public static readonly string[] AllResponseFormats = ["json_schema", "json_object", "text"];

    public IReadOnlyList<string> EffectiveResponseFormats => ResponseFormats.Count > 0 ? ResponseFormats : AllResponseFormats;

    /// <summary>
    /// The model's output limit in tokens (0: none). A reply longer than this, or than the request's
    /// <c>max_completion_tokens</c> / <c>max_tokens</c>, is cut off there with <c>finish_reason: length</c>.
    /// </summary>
    public int MaxOutputTokens { get; set; }

    /// <summary>The Files and Batches APIs (<see cref="BatchEndpoints"/>).</summary>
    public BatchOptions Batch { get; set; } = new();

    /// <summary>Report prompt caching (<c>usage.prompt_tokens_details.cached_tokens</c>) as the real services do; see <see cref="PromptCache"/>.</summary>
    public bool PromptCaching { get; set; } = true;

    /// <summary>How the emulated teacher picks texts (README: "The teacher's policy").</summary>
    public TeacherPolicyOptions Policy { get; set; } = new();

    public static readonly string[] DefaultDeployments = ["gpt-4o-mini", "pgkd-teacher"];

    public IReadOnlyList<string> EffectiveDeployments => Deployments.Count > 0 ? Deployments : DefaultDeployments;
}

/// <summary>
/// The emulated teacher's policy, a model of an LLM asked for "new, unambiguous examples of class c resembling these
/// hard negatives" (src/Pgkd.TeacherEmulator/README.md). The defaults were fixed before measuring, from a calibration
/// on pool and validation data only; none of them was tuned on test data.
/// </summary>
public sealed class TeacherPolicyOptions
{
    /// <summary>
    /// How many nearest texts of the requested class around each hard negative the teacher draws from (at random). An
    /// LLM writes variations on a theme, not the single closest text; the calibration found the 1-3 nearest too narrow.
    /// </summary>
    public int Neighbourhood { get; set; } = 30;

    /// <summary>A text's own neighbourhood in the pool, for the unambiguity check: its k nearest other pool texts.</summary>
    public int AgreementNeighbours { get; set; } = 10;

    /// <summary>
    /// Only texts whose nearest pool neighbours mostly share their label are written (an LLM asked for unambiguous
    /// examples does not write texts that read like another class). Applies to every reply, guided or not.
    /// </summary>
    public double MinAgreement { get; set; } = 0.6;

    /// <summary>No two texts in one reply closer than this (TF-IDF cosine): no near-duplicates.</summary>
    public double MaxPairCosine { get; set; } = 0.7;

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (Neighbourhood < 1) problems.Add($"Emulator:Policy:Neighbourhood must be 1 or more, was {Neighbourhood}");
        if (AgreementNeighbours < 1) problems.Add($"Emulator:Policy:AgreementNeighbours must be 1 or more, was {AgreementNeighbours}");
        if (!(MinAgreement >= 0 && MinAgreement <= 1)) problems.Add($"Emulator:Policy:MinAgreement must be from 0 to 1, was {MinAgreement}");
        if (!(MaxPairCosine > 0 && MaxPairCosine <= 1)) problems.Add($"Emulator:Policy:MaxPairCosine must be more than 0 and at most 1, was {MaxPairCosine}");
        return problems;
    }
}

/// <summary>
/// Faults injected on purpose, for the reliability tests and for demos of a flaky teacher.
/// Rates are probabilities per request (per item for label noise), drawn from the seeded stream.
/// </summary>
public sealed class FaultOptions
{
    /// <summary>Share of returned samples whose label is replaced by a different, random label.</summary>
    public double LabelNoiseRate { get; set; }

    /// <summary>Share of returned samples given a label outside the prompt's label set (<see cref="UnknownLabel"/>): the client must reject them.</summary>
    public double UnknownLabelRate { get; set; }

    public const string UnknownLabel = "Miscellaneous";

    /// <summary>Share of replies whose content is cut-off, unparseable JSON (status 200).</summary>
    public double MalformedReplyRate { get; set; }

    /// <summary>Share of requests answered 429 with <c>Retry-After</c> and <c>retry-after-ms</c>.</summary>
    public double TooManyRequestsRate { get; set; }

    /// <summary>What the 429 asks the client to wait, in milliseconds (<c>Retry-After</c> carries it rounded up to seconds).</summary>
    public int RetryAfterMs { get; set; } = 1000;

    /// <summary>Share of requests answered 500.</summary>
    public double ServerErrorRate { get; set; }

    /// <summary>Share of requests that hang for <see cref="HangMs"/> before answering (client timeouts).</summary>
    public double HangRate { get; set; }

    public int HangMs { get; set; } = 30_000;

    /// <summary>
    /// Share of requests whose prompt the content filter refuses: HTTP 400 with error code <c>content_filter</c> and Azure's
    /// <c>innererror</c> (<c>ResponsibleAIPolicyViolation</c>, <c>content_filter_result</c>).
    /// </summary>
    public double PromptFilterRate { get; set; }

    /// <summary>Share of replies the content filter withholds: HTTP 200, <c>finish_reason: content_filter</c>, no content.</summary>
    public double ContentFilterRate { get; set; }

    /// <summary>Added to every request, in milliseconds.</summary>
    public int LatencyMs { get; set; }

    /// <summary>Stop injecting request faults (429, 500, hang, malformed) after this many; 0 = no limit.</summary>
    public int MaxInjected { get; set; }
}
