using System.Threading.Channels;

namespace IpyRpc.Jobs;

/// <summary>Where a job is in its life.</summary>
public enum JobState
{
    /// <summary>Waiting for a worker.</summary>
    Queued,
    /// <summary>A worker is running it.</summary>
    Running,
    /// <summary>Finished with a result.</summary>
    Succeeded,
    /// <summary>Finished with an error.</summary>
    Failed,
    /// <summary>Cancelled before or while it ran.</summary>
    Cancelled,
    /// <summary>Ran past its timeout.</summary>
    TimedOut,
}

/// <summary>
/// A call turned into a job: everything a worker needs to run it, as plain data, so a durable
/// queue can store it and a worker in another process can take it.
/// </summary>
public sealed record JobRequest
{
    /// <summary>The job's id, unique in its queue.</summary>
    public required string Id { get; init; }

    /// <summary>The exported function name.</summary>
    public required string Function { get; init; }

    /// <summary>The encoded arguments (an array or a map).</summary>
    public ReadOnlyMemory<byte> Arguments { get; init; }

    /// <summary>The serialization of <see cref="Arguments"/>.</summary>
    public Serialization InputSerialization { get; init; } = Serialization.MessagePack;

    /// <summary>The serialization the result is to be written in.</summary>
    public Serialization OutputSerialization { get; init; } = Serialization.MessagePack;

    /// <summary>How long the job may run.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>When the job was created.</summary>
    public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow;
}

/// <summary>How a job ended: its state and either the encoded result or the error.</summary>
public sealed record JobOutcome
{
    /// <summary>The final state.</summary>
    public required JobState State { get; init; }

    /// <summary>The encoded result, when it succeeded.</summary>
    public ReadOnlyMemory<byte> Result { get; init; }

    /// <summary>The serialization of <see cref="Result"/>.</summary>
    public Serialization ResultSerialization { get; init; }

    /// <summary>The error, when it did not succeed.</summary>
    public RemoteError? Error { get; init; }

    /// <summary>A successful outcome.</summary>
    public static JobOutcome Success(ReadOnlyMemory<byte> result, Serialization serialization)
        => new() { State = JobState.Succeeded, Result = result, ResultSerialization = serialization };

    /// <summary>An unsuccessful outcome.</summary>
    public static JobOutcome Failure(JobState state, RemoteError error) => new() { State = state, Error = error };
}

/// <summary>What kind of <see cref="JobEvent"/> it is.</summary>
public enum JobEventKind
{
    /// <summary>A worker started the job.</summary>
    Started,
    /// <summary>The job wrote console output.</summary>
    Output,
    /// <summary>The job ended; the event carries the outcome and is the last one.</summary>
    Completed,
}

/// <summary>Something that happened to a job, in the order it happened.</summary>
/// <param name="Kind">What happened.</param>
/// <param name="Stream">For output: which stream.</param>
/// <param name="Text">For output: the text.</param>
/// <param name="Outcome">For completion: how it ended.</param>
public readonly record struct JobEvent(JobEventKind Kind, OutputStream Stream = OutputStream.Stdout, string? Text = null, JobOutcome? Outcome = null);

/// <summary>A piece of a job's recorded output.</summary>
/// <param name="Stream">Which stream.</param>
/// <param name="Text">The text.</param>
public readonly record struct OutputChunk(OutputStream Stream, string Text);

/// <summary>A job as it stands: for <c>jobs</c> listings and for callers that reconnect.</summary>
public sealed record JobSnapshot
{
    /// <summary>The id.</summary>
    public required string Id { get; init; }

    /// <summary>The function.</summary>
    public required string Function { get; init; }

    /// <summary>The state.</summary>
    public required JobState State { get; init; }

    /// <summary>When it was queued.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When a worker started it.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When it ended.</summary>
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>The output recorded so far.</summary>
    public IReadOnlyList<OutputChunk> Output { get; init; } = [];

    /// <summary>How it ended, once it has.</summary>
    public JobOutcome? Outcome { get; init; }
}

/// <summary>A queued job as its submitter holds it: the id and, when no observer was given, its live events.</summary>
/// <param name="JobId">The job's id.</param>
/// <param name="Events">Started, output and completed events as they happen, completing after <see cref="JobEventKind.Completed"/>; <see langword="null"/> when an observer receives them instead.</param>
public sealed record JobTicket(string JobId, ChannelReader<JobEvent>? Events);
