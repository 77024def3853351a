namespace Pgkd.Core.Teacher;

/// <summary>
/// Why a round got no teacher samples although the teacher answered, and what to do about it: shown in the run status,
/// the CLI and the report, so a round reading "accepted 0, rejected 0" is never left unexplained.
/// </summary>
/// <param name="Kind"><c>NoSamples</c> (the replies held no samples) or <c>OnlyUnknownLabels</c> (every sample had a label outside the run's set).</param>
public sealed record TeacherShortfall(string Kind, string Cause, string Fix)
{
    public const string NoSamples = "NoSamples";
    public const string OnlyUnknownLabels = "OnlyUnknownLabels";

    private const string PoolOrRealTeacher =
        "The local teacher emulator writes only texts from its pool of labeled examples, so it knows only that pool's labels: " +
        "give it a pool of your own labeled texts for this run (pgkd run --pool FILE, \"pool\" in POST /v1/runs, or the AppHost's " +
        "--teacher-pool FILE for every run), or use a real teacher (ConnectionStrings:teacher, README \"Using a real teacher\").";

    /// <summary>
    /// The diagnosis of a round's generation figures, or null when the round got samples, asked for none, or lost its
    /// replies to causes that are reported on their own (unusable or filtered replies, the budget).
    /// </summary>
    public static TeacherShortfall? Diagnose(int requested, int accepted, IReadOnlyDictionary<string, int> rejectedByReason,
        int unusableReplies = 0, int filtered = 0, string? generationStopReason = null)
    {
        ArgumentNullException.ThrowIfNull(rejectedByReason);
        if (requested <= 0 || accepted > 0 || unusableReplies > 0 || filtered > 0 || generationStopReason is not null) return null;
        var rejected = rejectedByReason.Values.Sum();
        if (rejected == 0)
            return new TeacherShortfall(NoSamples,
                $"the teacher answered but returned no samples for the {requested} requested: it has nothing for this run's labels", PoolOrRealTeacher);
        var unknown = rejectedByReason.GetValueOrDefault(nameof(RejectReason.UnknownLabel));
        if (unknown == rejected)
            return new TeacherShortfall(OnlyUnknownLabels,
                $"all {unknown} samples the teacher returned had labels outside this run's label set (rejected as {nameof(RejectReason.UnknownLabel)})", PoolOrRealTeacher);
        return null;
    }

    /// <summary>One line: "cause. Fix: fix".</summary>
    public override string ToString() => $"{Cause}. Fix: {Fix}";
}
