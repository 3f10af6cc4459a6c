namespace IpyRpc.Jobs;

/// <summary>
/// A queue's store could not be reached for as long as the queue waits for it: Redis restarting or cut off (past
/// <c>RedisJobQueueOptions.ReconnectTimeout</c>), a SQLite file another process holds locked (past
/// <see cref="SqliteJobQueueOptions.BusyTimeout"/>). The server answers the call, or the job request, with <see cref="Protocol.ErrorCodes.Unavailable"/>
/// and this exception's message, and goes on serving; the store's own exception, with its details (addresses,
/// its client's state), stays in <see cref="Exception.InnerException"/> for the server's log.
/// </summary>
public sealed class JobQueueUnavailableException : IOException
{
    /// <summary>Creates the exception; <paramref name="message"/> is sent to the caller, so it names no address or internal state.</summary>
    public JobQueueUnavailableException(string queue, string message, Exception? inner = null, string? jobId = null, bool mayHaveBeenQueued = false)
        : base(message, inner)
    {
        Queue = queue;
        JobId = jobId;
        MayHaveBeenQueued = mayHaveBeenQueued;
    }

    /// <summary>The queue's name.</summary>
    public string Queue { get; }

    /// <summary>For a submission: the id its job has, if it was queued.</summary>
    public string? JobId { get; }

    /// <summary>
    /// For a submission: the request reached the store before the connection broke and no answer came, so the job
    /// may have been queued (and will then run) under <see cref="JobId"/>. When false, it was not queued and nothing ran.
    /// </summary>
    public bool MayHaveBeenQueued { get; }
}
