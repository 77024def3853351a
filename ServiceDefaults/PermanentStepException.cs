namespace Microsoft.Extensions.Hosting;

/// <summary>
/// A step that would fail the same way however often its message is delivered again (the teacher stayed down past
/// its own retries and deadline, a setting is wrong). <see cref="PgkdBusExtensions.AddPgkdBus{TBuilder}"/> does not
/// retry it: the message goes straight to its <c>_error</c> queue and the <c>Fault&lt;T&gt;</c> carries this
/// exception's message, which the orchestrator records as the run's failure reason, so the message should say
/// what failed, where, and why, for a user.
/// </summary>
public class PermanentStepException(string message, Exception? inner = null) : Exception(message, inner);
