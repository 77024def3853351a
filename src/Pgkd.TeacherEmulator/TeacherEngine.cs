using System.Text.Json;
using System.Text.RegularExpressions;
using Pgkd.Core;
using Pgkd.Core.Data;
using Pgkd.Core.Teacher;

namespace Pgkd.TeacherEmulator;

/// <summary>One chat message as the emulator reads it.</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>A sample the emulator put in a reply: the pool index it came from, the label it was given (flipped by label noise or not), its cosine to the nearest hard negative (0 for random picks).</summary>
public sealed record EmulatedSample(string Text, string Label, int PoolIndex, bool LabelFlipped, double Similarity);

/// <summary>What the engine answered: the assistant message content and how it got there.</summary>
public sealed record EngineAnswer(string Content, IReadOnlyList<EmulatedSample> Samples, bool FollowedGuidance, bool Malformed);

/// <summary>
/// The emulated teacher. It answers the project's generation prompt by reading its machine-readable
/// guidance block (<see cref="TeacherPromptBuilder.TryExtractGuidance"/>):
/// <list type="bullet">
/// <item>per-label counts come from the guidance allocation;</item>
/// <item>only unambiguous texts are written: pool texts whose own nearest pool neighbours mostly share their label
/// (<see cref="TeacherPolicyOptions.MinAgreement"/>), in every reply;</item>
/// <item>for a label with hard negatives (true label = that label), texts of that label drawn at random from each
/// hard negative's neighbourhood (its <see cref="TeacherPolicyOptions.Neighbourhood"/> nearest by TF-IDF cosine),
/// round-robin over the hard negatives;</item>
/// <item>for a label without hard negatives (and in the ablations, whose guidance has none), random texts of that label;</item>
/// <item>no two texts of one reply are near-duplicates (<see cref="TeacherPolicyOptions.MaxPairCosine"/>).</item>
/// </list>
/// README.md ("The teacher's policy") says why each rule models an LLM teacher.
/// A prompt without a guidance block (e.g. a hand-written chat) gets "N examples" (N read from
/// the prompt, else 4) spread evenly over the pool's labels.
/// <para>
/// The run id (the OpenAI <c>user</c> field, or the <c>X-Pgkd-Run-Id</c> header, else "default")
/// keys a per-run record of handed-out pool texts: a run never receives the same pool text twice,
/// and when a label's texts run out the reply is shorter (the client sees fewer samples, as with a
/// real model that stops early). This memory lives in the process: after an emulator restart a run
/// can be handed a text again, which the client's duplicate check (training hashes) then rejects. Held-out data is kept out twice: exclude files drop their texts from
/// the pool at load (<see cref="TeacherPool"/>), and every text shown in the prompt's guidance
/// (hard negatives and samples, which are validation texts) is excluded by hash per request.
/// </para>
/// <para>
/// Every random choice comes from <see cref="SeededRandom"/> derived from the seed and the request's messages; never from
/// the run id (issue 19.3). So two runs with the same data, configuration and seed get the same replies and store
/// identical shards, as long as their requests arrive in the same order: with requests of a round in parallel
/// (Generator:MaxParallelRequests above 1), which of two requests gets a contested pool text depends on which arrives first.
/// </para>
/// <para>
/// A run that sends a request it sent before gets the reply it got then (issue 19.5): the generator's requests differ in
/// every batch and round, so a repeat is a retry (a reply lost to a timeout or a dropped connection) or a round asked again
/// after a crash, and answering it from where the run's pool now stands would make the redone round differ from the same
/// run undisturbed. A cut-off or withheld reply handed nothing out and is not remembered, so asking again gets the full one.
/// </para>
/// </summary>
public sealed class TeacherEngine(TeacherPool pool, EmulatorOptions options)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly Dictionary<string, RunState> _runs = new(StringComparer.Ordinal);

    public TeacherPool Pool => pool;

    /// <summary>How many pool texts a run has received so far.</summary>
    public int UsedCount(string runId)
    {
        lock (_runs) return _runs.TryGetValue(runId, out var s) ? s.UsedCount : 0;
    }

    /// <summary>
    /// How many chat requests a run sent (repeats included) and how many pool texts it was handed. A round whose generation
    /// was cut off and done again shows more requests than the same run undisturbed (the chaos scenario reads it).
    /// </summary>
    public (int Requests, int PoolTextsHandedOut) RunCounts(string runId)
    {
        RunState? state;
        lock (_runs) _runs.TryGetValue(runId, out state);
        if (state is null) return (0, 0);
        lock (state) return (state.Asked.Values.Sum(), state.UsedCount);
    }

    /// <summary>
    /// Answers one chat request. A malformed answer (fault injection) is cut-off JSON and consumes no
    /// pool texts, so the repair request gets a full answer. With <paramref name="labelEnum"/> (a json_schema request
    /// whose <c>label</c> is an enum) every label in the reply is one of it, as a server enforcing the schema would
    /// write: label noise picks another label of the enum, and so does the unknown-label fault.
    /// </summary>
    public EngineAnswer Answer(IReadOnlyList<ChatTurn> messages, string runId, bool malformed, IReadOnlyList<string>? labelEnum = null)
    {
        RunState state;
        lock (_runs)
        {
            if (!_runs.TryGetValue(runId, out state!)) _runs[runId] = state = new RunState();
        }
        lock (state)
        {
            var requestHash = ContentHash(messages);
            state.Asked[requestHash] = state.Asked.GetValueOrDefault(requestHash) + 1;
            // The label enum shapes the labels written, so a request asked again under another response format is another request.
            var replyKey = labelEnum is null ? requestHash : SeededRandom.Derive(requestHash, StableHash(string.Join('\n', labelEnum)));
            if (!malformed && state.Replies.TryGetValue(replyKey, out var earlier)) return earlier;
            var random = new SeededRandom(SeededRandom.Derive(unchecked((ulong)options.Seed), requestHash));

            var guidance = FindGuidance(messages);
            List<(string Label, int Count)> request;
            IReadOnlyList<string> labelNames;
            var shownHashes = new HashSet<string>(StringComparer.Ordinal);
            if (guidance is not null)
            {
                request = guidance.Allocation.Select(a => (a.Label, Math.Max(0, a.Count))).ToList();
                labelNames = guidance.Labels.Select(l => l.Name).ToArray();
                foreach (var h in guidance.HardNegatives) shownHashes.Add(TextHash.Of(h.Text));
                foreach (var h in guidance.CorrectSamples) shownHashes.Add(TextHash.Of(h.Text));
                foreach (var h in guidance.IncorrectSamples) shownHashes.Add(TextHash.Of(h.Text));
            }
            else
            {
                labelNames = pool.Labels.Names;
                var total = RequestedCountOf(messages);
                var counts = Core.Guidance.ClassAllocation.Balanced(total, labelNames.Count);
                request = labelNames.Select((l, i) => (l, counts[i])).ToList();
            }

            // Cap the reply like a model's output limit would, keeping the proportions roughly.
            var requested = request.Sum(r => r.Count);
            if (requested > options.MaxSamplesPerReply)
                request = request.Select(r => (r.Label, (int)((long)r.Count * options.MaxSamplesPerReply / requested))).ToList();

            var chosen = new List<int>();
            var samples = new List<EmulatedSample>();
            var policy = options.Policy;
            foreach (var (label, count) in request)
            {
                if (count == 0) continue;
                // Unambiguous texts only: the teacher writes examples that read like their class.
                var candidates = pool.OfLabel(label)
                    .Where(i => !state.Used.Contains(i) && !chosen.Contains(i) && !shownHashes.Contains(pool.Hashes[i])
                                && pool.LabelAgreement(i, policy.AgreementNeighbours) >= policy.MinAgreement)
                    .ToList();
                var hard = guidance?.HardNegatives
                    .Where(h => string.Equals(h.TrueLabel?.Trim(), label.Trim(), StringComparison.OrdinalIgnoreCase))
                    .ToList() ?? [];
                var picks = hard.Count > 0
                    ? NeighbourhoodRoundRobin(candidates, hard.Select(h => pool.Index.Embed(h.Text)).ToList(), count, chosen, random)
                    : Diverse(random.Sample(candidates, candidates.Count).Select(i => (Index: i, Similarity: 0.0)), count, chosen);
                foreach (var (index, similarity) in picks)
                {
                    chosen.Add(index);
                    var shown = label;
                    var flipped = false;
                    var choices = labelEnum ?? labelNames;
                    if (options.Faults.LabelNoiseRate > 0 && choices.Count > 1 && random.NextDouble() < options.Faults.LabelNoiseRate)
                    {
                        var others = choices.Where(n => !string.Equals(n, label, StringComparison.OrdinalIgnoreCase)).ToList();
                        shown = others[random.NextInt(others.Count)];
                        flipped = true;
                    }
                    if (options.Faults.UnknownLabelRate > 0 && random.NextDouble() < options.Faults.UnknownLabelRate)
                    {
                        // Under a schema the model cannot leave the enum: its mistake is another label of the set.
                        var others = labelEnum?.Where(n => !string.Equals(n, label, StringComparison.OrdinalIgnoreCase)).ToList();
                        shown = others is null ? FaultOptions.UnknownLabel : others.Count > 0 ? others[random.NextInt(others.Count)] : label;
                        flipped = true;
                    }
                    if (labelEnum is { Count: > 0 } && !labelEnum.Contains(shown, StringComparer.Ordinal))
                        shown = labelEnum.FirstOrDefault(n => string.Equals(n, shown, StringComparison.OrdinalIgnoreCase)) ?? labelEnum[random.NextInt(labelEnum.Count)];
                    samples.Add(new EmulatedSample(pool.Examples[index].Text, shown, index, flipped, similarity));
                }
            }

            var content = JsonSerializer.Serialize(
                new { samples = samples.Select(s => new { text = s.Text, label = s.Label }) }, Json);
            if (malformed)
            {
                // A reply cut off mid-way, after a chatty preamble: valid JSON nowhere.
                var cut = content[..Math.Max(1, content.Length * 3 / 5)];
                return new EngineAnswer("Here are the new examples you asked for:\n" + cut, samples, guidance is not null, true);
            }
            foreach (var s in samples) state.Used.Add(s.PoolIndex);
            var answer = new EngineAnswer(content, samples, guidance is not null, false);
            state.Replies[replyKey] = answer;
            return answer;
        }
    }

    /// <summary>
    /// Each hard negative in turn takes a random text from its neighbourhood (its <see cref="TeacherPolicyOptions.Neighbourhood"/>
    /// nearest candidates), skipping near-duplicates of texts already in the reply; when every neighbourhood is spent
    /// before <paramref name="count"/>, the rest are the candidates nearest to any hard negative.
    /// </summary>
    private List<(int Index, double Similarity)> NeighbourhoodRoundRobin(List<int> candidates, List<SparseVector> hard, int count,
        List<int> inReply, SeededRandom random)
    {
        var rankings = hard.Select(h => candidates
                .Select(i => (Index: i, Similarity: TfIdfIndex.Cosine(h, pool.Index.Document(i))))
                .OrderByDescending(x => x.Similarity).ThenBy(x => x.Index)
                .ToList())
            .ToList();
        var neighbourhoods = rankings.Select(r => random.Sample(r.Take(options.Policy.Neighbourhood).ToList(), Math.Min(r.Count, options.Policy.Neighbourhood))).ToList();
        var cursor = new int[hard.Count];
        var taken = new List<int>(inReply);
        var result = new List<(int, double)>();
        bool progress;
        do
        {
            progress = false;
            for (var h = 0; h < hard.Count && result.Count < count; h++)
            {
                var hood = neighbourhoods[h];
                while (cursor[h] < hood.Count && !Acceptable(hood[cursor[h]].Index, taken)) cursor[h]++;
                if (cursor[h] == hood.Count) continue;
                var pick = hood[cursor[h]++];
                taken.Add(pick.Index);
                result.Add(pick);
                progress = true;
            }
        } while (progress && result.Count < count);
        if (result.Count < count)
        {
            var nearestToAny = candidates
                .Select(i => (Index: i, Similarity: rankings.Max(r => r.First(x => x.Index == i).Similarity)))
                .OrderByDescending(x => x.Similarity).ThenBy(x => x.Index);
            result.AddRange(Diverse(nearestToAny, count - result.Count, taken));
        }
        return result;
    }

    /// <summary>Takes from <paramref name="ordered"/> in order, skipping texts taken or near-duplicates of one, until count.</summary>
    private List<(int Index, double Similarity)> Diverse(IEnumerable<(int Index, double Similarity)> ordered, int count, List<int> inReply)
    {
        var taken = new List<int>(inReply);
        var result = new List<(int, double)>();
        foreach (var candidate in ordered)
        {
            if (result.Count == count) break;
            if (!Acceptable(candidate.Index, taken)) continue;
            taken.Add(candidate.Index);
            result.Add(candidate);
        }
        return result;
    }

    /// <summary>Not already in the reply, and no near-duplicate (cosine above MaxPairCosine) of a text that is.</summary>
    private bool Acceptable(int index, List<int> taken) =>
        !taken.Contains(index) && taken.All(t => TfIdfIndex.Cosine(pool.Index.Document(index), pool.Index.Document(t)) <= options.Policy.MaxPairCosine);

    /// <summary>The guidance of the latest user message that has one (a repair turn repeats none, so the original's counts).</summary>
    internal static PromptGuidance? FindGuidance(IReadOnlyList<ChatTurn> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
            if (messages[i].Role == "user" && TeacherPromptBuilder.TryExtractGuidance(messages[i].Content, out var g)) return g;
        return null;
    }

    private static readonly Regex CountPattern = new(@"(\d{1,4})\s+(?:new\s+)?(?:\w+\s+)?(?:examples|samples)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    internal static int RequestedCountOf(IReadOnlyList<ChatTurn> messages)
    {
        var user = messages.LastOrDefault(m => m.Role == "user")?.Content ?? "";
        var m = CountPattern.Match(user);
        return m.Success && int.TryParse(m.Groups[1].Value, out var n) && n > 0 ? n : 4;
    }

    /// <summary>FNV-1a over UTF-16 code units: stable across processes (string.GetHashCode is not).</summary>
    internal static ulong StableHash(string s)
    {
        var h = 14695981039346656037UL;
        foreach (var c in s) h = unchecked((h ^ c) * 1099511628211UL);
        return h;
    }

    /// <summary>The request's messages (roles and contents) as one stable hash: what a reply may depend on.</summary>
    internal static ulong ContentHash(IReadOnlyList<ChatTurn> messages)
    {
        var h = 14695981039346656037UL;
        foreach (var turn in messages)
            h = SeededRandom.Derive(SeededRandom.Derive(h, StableHash(turn.Role)), StableHash(turn.Content));
        return h;
    }

    private sealed class RunState
    {
        public readonly HashSet<int> Used = [];
        /// <summary>How often each request content was asked (a repeat counts, so a round asked again shows).</summary>
        public readonly Dictionary<ulong, int> Asked = [];
        /// <summary>The reply each request got, by request (and label enum): a repeat gets it again.</summary>
        public readonly Dictionary<ulong, EngineAnswer> Replies = [];
        public int UsedCount => Used.Count;
    }
}
