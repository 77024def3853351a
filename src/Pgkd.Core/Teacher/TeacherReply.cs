using Pgkd.Core.Data;

namespace Pgkd.Core.Teacher;

/// <summary>Why one item of a teacher reply was not accepted.</summary>
public enum RejectReason
{
    /// <summary>Not an object, or a field of the wrong type.</summary>
    InvalidItem,
    MissingField,
    UnknownLabel,
    EmptyText,
    TextTooShort,
    TextTooLong,
    /// <summary>The text (normalised) is already in the training data.</summary>
    DuplicateOfTraining,
    /// <summary>The text (normalised) occurred earlier in the same reply.</summary>
    DuplicateInReply,
    /// <summary>The text occurs in validation or test data: accepting it would leak held-out data.</summary>
    HeldOutLeakage,
    /// <summary>The reply had more items than the context allows.</summary>
    OverItemLimit,
}

/// <summary>One rejected item: its zero-based index in the reply's "samples" array, why, and a short detail.</summary>
public sealed record ReplyRejection(int ItemIndex, RejectReason Reason, string Detail);

/// <summary>What a reply is checked against.</summary>
public sealed record TeacherReplyContext
{
    public required LabelSet Labels { get; init; }

    /// <summary><see cref="TextHash"/> of every training text (seed + accepted so far).</summary>
    public IReadOnlySet<string> TrainingHashes { get; init; } = new HashSet<string>();

    /// <summary><see cref="TextHash"/> of every validation and test text.</summary>
    public IReadOnlySet<string> HeldOutHashes { get; init; } = new HashSet<string>();

    /// <summary>Shortest accepted text, characters after normalisation.</summary>
    public int MinTextLength { get; init; } = 5;

    /// <summary>Longest accepted text, characters after normalisation.</summary>
    public int MaxTextLength { get; init; } = 2000;

    /// <summary>At most this many items are accepted; the rest are rejected as <see cref="RejectReason.OverItemLimit"/>.</summary>
    public int MaxItems { get; init; } = 1000;

    /// <summary>Longer replies are refused outright, which bounds the parser's work.</summary>
    public int MaxReplyChars { get; init; } = 4_000_000;
}

/// <summary>
/// The outcome of parsing one reply. ReplyError is set when no usable JSON with a "samples" array
/// was found at all (then Accepted is empty). Rejections lists details for at most
/// <see cref="TeacherReplyParser.MaxRejectionDetails"/> items; RejectTally counts all of them.
/// </summary>
public sealed record TeacherReplyParseResult(
    IReadOnlyList<LabeledExample> Accepted,
    IReadOnlyList<ReplyRejection> Rejections,
    IReadOnlyDictionary<RejectReason, int> RejectTally,
    string? ReplyError,
    int ItemCount)
{
    public bool IsValidReply => ReplyError is null;

    public int RejectedCount => RejectTally.Values.Sum();

    internal static TeacherReplyParseResult Failed(string error) =>
        new([], [], new Dictionary<RejectReason, int>(), error, 0);
}
