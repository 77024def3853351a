namespace Pgkd.Contracts;

/// <summary>
/// Published by the gateway to prove the wiring end to end: every service reads the blob at
/// <paramref name="BlobUri"/> and answers with a <see cref="Pong"/> carrying its content hash.
/// </summary>
public sealed record Ping(Guid PingId, Uri BlobUri, DateTimeOffset SentAt);

/// <summary>One service's answer to a <see cref="Ping"/>; <paramref name="Error"/> says why the blob could not be read.</summary>
public sealed record Pong(Guid PingId, string Service, string? BlobSha256, string? Error, DateTimeOffset AnsweredAt);
