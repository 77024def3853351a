using System.Globalization;
using System.Text;
using System.Text.Json;
using Pgkd.Core.Data;
using Pgkd.Core.Guidance;

namespace Pgkd.Core.Teacher;

/// <summary>
/// Builds the teacher prompt in the paper's structure: role (system), then task, labels, the exact reply
/// schema, few-shot examples, the validation report, correct and incorrect samples, hard negatives, the
/// request with its per-class allocation, and the guidance JSON block. Everything up to the few-shot
/// examples is the same for every request of a run (the few-shot picks use <see cref="TeacherPromptInput.FewShotSeed"/>),
/// so repeated requests share a prefix that the provider's prompt cache bills at the cached rate.
/// To fit <see cref="TeacherPromptOptions.MaxPromptTokens"/> it removes whole items — few-shot
/// examples first, then samples, then the least confident hard negatives — and rebuilds, so the
/// JSON block is never cut.
/// </summary>
public static class TeacherPromptBuilder
{
    /// <summary>The line that precedes the fenced guidance JSON in the user message.</summary>
    public const string GuidanceMarker = "PGKD-GUIDANCE:";

    /// <summary>The schema every reply must follow.</summary>
    public const string ReplySchema = """{"samples":[{"text":"...","label":"..."}]}""";

    public const string SystemPrompt =
        "You are the teacher in a knowledge-distillation loop. You write labeled training examples for a small " +
        "student text classifier. You are shown how the student performs on validation data and where it is " +
        "confidently wrong, and you write new, realistic, varied examples that will help it most. " +
        "You never copy the examples you are shown. You reply with JSON only, in the exact schema requested.";

    private static readonly JsonSerializerOptions JsonOptions = ReadOnly(new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = false,
        MaxDepth = 16,
        // Readable non-ASCII (fewer tokens); the block is one line, so no text can end the fence.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private static JsonSerializerOptions ReadOnly(JsonSerializerOptions options)
    {
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>The serializer settings of the guidance block (camelCase, one line, readable non-ASCII); read-only.</summary>
    public static JsonSerializerOptions GuidanceJsonOptions => JsonOptions;

    /// <summary>
    /// Token estimate: ceil(characters / 4), the usual rule of thumb for English with GPT-style
    /// tokenizers; what <see cref="Build"/> counts with when it is given no tokenizer.
    /// </summary>
    public static int EstimateTokens(string text) => TokenCounters.CharactersOverFour(text);

    /// <summary>
    /// Builds the prompt, fitting <see cref="TeacherPromptOptions.MaxPromptTokens"/> as counted by
    /// <paramref name="countTokens"/>: the teacher model's tokenizer in the services (so the budget means the tokens
    /// the provider bills), ceil(characters / 4) when none is given. The count includes the chat messages' overhead.
    /// </summary>
    public static TeacherPrompt Build(TeacherPromptInput input, TeacherPromptOptions? options = null, TokenCounter? countTokens = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        options ??= TeacherPromptOptions.Default;
        Validate(input, options);

        var fewShot = PickFewShot(input, options);
        var selection = options.IncludeHardNegatives ? input.Selection ?? HardNegativeSelection.Empty : HardNegativeSelection.Empty;
        // A round is asked in requests of a few labels each. Only the hard negatives of the labels this request asks for are
        // shown: with many classes the others would crowd them out of the prompt budget (on Banking77, 77 labels, every hard
        // negative was trimmed away before this), and the teacher writes nothing for those labels here anyway.
        var asked = AskedLabels(input);
        selection = selection with { HardNegatives = selection.HardNegatives.Where(h => asked.Contains(h.TrueLabel)).ToArray() };
        var shown = new Shown(
            fewShot.Select(l => l.Count).ToArray(),
            selection.CorrectSamples.Count,
            selection.IncorrectSamples.Count,
            selection.HardNegatives.Count);
        var full = shown.Copy();

        while (true)
        {
            var (user, json) = Render(input, options, fewShot, selection, shown, asked);
            var tokens = countTokens is null ? EstimateTokens(SystemPrompt) + EstimateTokens(user) : ChatTokens.Prompt(countTokens, SystemPrompt, user);
            var fits = tokens <= options.MaxPromptTokens;
            if (fits || !shown.TryDropOne())
            {
                var trimming = new PromptTrimming(
                    full.FewShot.Sum() - shown.FewShot.Sum(),
                    full.Correct + full.Incorrect - shown.Correct - shown.Incorrect,
                    full.Hard - shown.Hard);
                return new TeacherPrompt(SystemPrompt, user, json, tokens, fits, trimming);
            }
        }
    }

    /// <summary>
    /// Reads the guidance block back from a user prompt: the first line equal to
    /// <see cref="GuidanceMarker"/>, followed by a ```json fence. Never throws.
    /// </summary>
    public static bool TryExtractGuidance(string? userPrompt, out PromptGuidance? guidance)
    {
        guidance = null;
        if (string.IsNullOrEmpty(userPrompt)) return false;
        var lines = userPrompt.Split('\n');
        for (var i = 0; i + 2 < lines.Length; i++)
        {
            if (lines[i].Trim() != GuidanceMarker || lines[i + 1].Trim() != "```json") continue;
            var body = new StringBuilder();
            for (var j = i + 2; j < lines.Length; j++)
            {
                if (lines[j].Trim() == "```")
                {
                    try
                    {
                        guidance = JsonSerializer.Deserialize<PromptGuidance>(body.ToString(), JsonOptions);
                        if (guidance is not null) return true;
                    }
                    catch (JsonException) { }
                    catch (NotSupportedException) { }
                    break;
                }
                body.Append(lines[j]).Append('\n');
            }
        }
        guidance = null;
        return false;
    }

    private static void Validate(TeacherPromptInput input, TeacherPromptOptions options)
    {
        if (input.Allocation is null || input.Allocation.Count != input.Labels.Count)
            throw new ArgumentException($"Allocation needs one count per label ({input.Labels.Count}), has {input.Allocation?.Count ?? 0}.", nameof(input));
        if (input.Allocation.Any(c => c < 0))
            throw new ArgumentException("Allocation counts must not be negative.", nameof(input));
        if (input.Allocation.Sum() == 0)
            throw new ArgumentException("Allocation asks for no examples.", nameof(input));
        if (string.IsNullOrWhiteSpace(input.TaskDescription))
            throw new ArgumentException("TaskDescription is required.", nameof(input));
        if (options.FewShotPerClass < 0) throw new ArgumentException("FewShotPerClass must be 0 or more.", nameof(options));
        if (options.MaxPromptTokens < 1) throw new ArgumentException("MaxPromptTokens must be positive.", nameof(options));
        if (options.MaxExampleChars < 8) throw new ArgumentException("MaxExampleChars must be at least 8.", nameof(options));
    }

    /// <summary>Per label (label-set order), up to FewShotPerClass pool examples, seeded.</summary>
    private static List<List<string>> PickFewShot(TeacherPromptInput input, TeacherPromptOptions options)
    {
        var result = new List<List<string>>();
        for (var c = 0; c < input.Labels.Count; c++)
        {
            var ofLabel = input.FewShotPool.Where(e => input.Labels.IndexOf(e.Label) == c).Select(e => e.Text).ToList();
            var random = new SeededRandom(SeededRandom.Derive(unchecked((ulong)(input.FewShotSeed ?? input.Seed)), (ulong)c + 100));
            result.Add(random.Sample(ofLabel, options.FewShotPerClass));
        }
        return result;
    }

    /// <summary>The labels this request asks at least one example of.</summary>
    private static HashSet<string> AskedLabels(TeacherPromptInput input) =>
        input.Labels.Names.Where((_, c) => input.Allocation[c] > 0).ToHashSet(StringComparer.Ordinal);

    /// <summary>How many of each optional item are currently shown; trimming lowers these.</summary>
    private sealed class Shown(int[] fewShot, int correct, int incorrect, int hard)
    {
        public int[] FewShot { get; } = fewShot;
        public int Correct { get; private set; } = correct;
        public int Incorrect { get; private set; } = incorrect;
        public int Hard { get; private set; } = hard;

        public Shown Copy() => new((int[])FewShot.Clone(), Correct, Incorrect, Hard);

        /// <summary>
        /// Removes one item in the documented order: a few-shot example from the label that has the
        /// most, then incorrect and correct samples, then the least confident hard negative.
        /// False when nothing optional is left.
        /// </summary>
        public bool TryDropOne()
        {
            var largest = FewShot.Length == 0 ? -1 : Array.IndexOf(FewShot, FewShot.Max());
            if (largest >= 0 && FewShot[largest] > 0)
            {
                FewShot[largest]--;
                return true;
            }
            if (Incorrect > 0) { Incorrect--; return true; }
            if (Correct > 0) { Correct--; return true; }
            if (Hard > 0) { Hard--; return true; }
            return false;
        }
    }

    private static (string User, string Json) Render(
        TeacherPromptInput input, TeacherPromptOptions options, List<List<string>> fewShot, HardNegativeSelection selection, Shown shown,
        HashSet<string> asked)
    {
        string Clip(string text)
        {
            var t = TextNormalizer.Normalize(text);
            return t.Length <= options.MaxExampleChars ? t : t[..(options.MaxExampleChars - 1)].TrimEnd() + "…";
        }
        static string Quote(string text) => JsonSerializer.Serialize(text, JsonOptions);
        static string F(double x) => x.ToString("0.000", CultureInfo.InvariantCulture);

        var labels = input.Labels;
        var requested = input.Allocation.Sum();
        var report = options.IncludeValidationReport ? input.Report : null;
        var hard = selection.HardNegatives.Take(shown.Hard).Select(h => h with { Text = Clip(h.Text) }).ToArray();
        var correct = selection.CorrectSamples.Take(shown.Correct).Select(s => new HardNegative(Clip(s.Text), s.TrueLabel, s.PredictedLabel, s.Confidence)).ToArray();
        var incorrect = selection.IncorrectSamples.Take(shown.Incorrect).Select(s => new HardNegative(Clip(s.Text), s.TrueLabel, s.PredictedLabel, s.Confidence)).ToArray();

        var sb = new StringBuilder();
        sb.Append("# Task\n").Append(input.TaskDescription.Trim()).Append('\n');
        sb.Append("\n# Labels\n");
        foreach (var l in labels.Labels)
            sb.Append("- ").Append(l.Name).Append(l.Description is null ? "" : ": " + l.Description).Append('\n');

        // The reply format is the same for every request: it belongs to the shared prefix, before anything that varies.
        sb.Append("\n# Reply format\n");
        sb.Append("Reply with only this JSON object and nothing else: ").Append(ReplySchema).Append('\n');
        sb.Append("Each \"label\" must be one of: ").Append(string.Join(", ", labels.Names)).Append(".\n");

        if (shown.FewShot.Sum() > 0)
        {
            sb.Append("\n# Examples of each label\n");
            for (var c = 0; c < labels.Count; c++)
            {
                if (shown.FewShot[c] == 0) continue;
                sb.Append("## ").Append(labels[c]).Append('\n');
                foreach (var text in fewShot[c].Take(shown.FewShot[c]))
                    sb.Append("- ").Append(Quote(Clip(text))).Append('\n');
            }
        }

        // Per-class figures for the labels asked and those the shown hard negatives were mistaken for: all of them with few
        // classes, a readable table with many.
        var rows = report?.PerClass.Where(m => asked.Contains(m.Label) || hard.Any(h => h.PredictedLabel == m.Label)).ToArray() ?? [];
        if (report is not null)
        {
            sb.Append("\n# How the student does on validation data (round ").Append(input.Round).Append(")\n");
            sb.Append($"Accuracy {F(report.Accuracy)}, macro F1 {F(report.MacroF1)}, weighted F1 {F(report.WeightedF1)}, validation loss {F(report.ValidationLoss)}, {report.Count} examples.\n");
            if (rows.Length < report.PerClass.Count)
                sb.Append($"Per label, for the {rows.Length} labels this request asks for or its hard negatives were mistaken for ({report.PerClass.Count} labels in all):\n");
            sb.Append("| label | precision | recall | F1 | support |\n|---|---|---|---|---|\n");
            foreach (var m in rows)
                sb.Append($"| {m.Label} | {F(m.Precision)} | {F(m.Recall)} | {F(m.F1)} | {m.Support} |\n");
        }

        if (correct.Length > 0)
        {
            sb.Append("\n# Examples the student classifies correctly\n");
            foreach (var s in correct)
                sb.Append("- ").Append(Quote(s.Text)).Append($" (label: {s.TrueLabel}, confidence {F(s.Confidence)})\n");
        }
        if (incorrect.Length > 0)
        {
            sb.Append("\n# Examples the student classifies incorrectly\n");
            foreach (var s in incorrect)
                sb.Append("- ").Append(Quote(s.Text)).Append($" (true label: {s.TrueLabel}, student said: {s.PredictedLabel}, confidence {F(s.Confidence)})\n");
        }
        if (hard.Length > 0)
        {
            sb.Append("\n# Hard negatives: the student is confidently wrong on these\n");
            foreach (var h in hard)
                sb.Append("- ").Append(Quote(h.Text)).Append($" (true label: {h.TrueLabel}, student said: {h.PredictedLabel}, confidence {F(h.Confidence)})\n");
            sb.Append("Write examples that teach the student the boundary between these labels; do not copy or closely paraphrase them.\n");
        }

        sb.Append("\n# Your request\n");
        sb.Append("Write exactly ").Append(requested).Append(" new examples, this many per label:\n");
        for (var c = 0; c < labels.Count; c++)
            if (input.Allocation[c] > 0) sb.Append("- ").Append(labels[c]).Append(": ").Append(input.Allocation[c]).Append('\n');
        if (input.RoundBounds is { } bounds)
            sb.Append($"These counts are this request's share of the round, which asks every label for at least {bounds.Floor}" +
                      (bounds.Cap is { } cap ? $" and at most {cap}" : "") + " examples.\n");
        sb.Append(report is not null
            ? "Labels with lower F1 get more examples: make those especially clear and varied.\n"
            : "Make the examples realistic and varied in topic, length and style.\n");
        sb.Append("Never copy an example shown in this prompt.\n");

        var guidance = new PromptGuidance(
            PromptGuidance.CurrentSchema,
            input.Round,
            requested,
            labels.Labels.Select(l => new GuidanceLabel(l.Name, l.Description)).ToArray(),
            labels.Labels.Select((l, c) => new GuidanceAllocation(l.Name, input.Allocation[c])).Where(a => a.Count > 0).ToArray(),
            report is null ? null : new GuidanceMetrics(report.Accuracy, report.MacroF1, report.WeightedF1, report.ValidationLoss, rows),
            hard,
            correct,
            incorrect);
        var json = JsonSerializer.Serialize(guidance, JsonOptions);
        sb.Append("\nThe same guidance, machine-readable:\n").Append(GuidanceMarker).Append("\n```json\n").Append(json).Append("\n```\n");

        return (sb.ToString(), json);
    }
}
