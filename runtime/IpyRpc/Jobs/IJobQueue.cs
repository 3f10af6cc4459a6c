namespace IpyRpc.Jobs;

/// <summary>
/// Runs calls as jobs. The server enqueues every call and relays the job's events to the caller;
/// workers take jobs and run them with an <see cref="IJobExecutor"/>. The in-memory queue is the
/// fast default; durable queues (SQLite, Redis) implement the same contract, so callers never change.
/// </summary>
public interface IJobQueue : IAsyncDisposable
{
    /// <summary>A name for listings and config (<see cref="FunctionOptions.Queue"/>).</summary>
    string Name { get; }

    /// <summary>Starts the workers, which run jobs with <paramref name="executor"/>.</summary>
    void Start(IJobExecutor executor);

    /// <summary>
    /// Queues a job. Its output and outcome go to <paramref name="observer"/> as they happen when one is
    /// given (the fast path a server uses); otherwise the ticket's <see cref="JobTicket.Events"/> report them.
    /// </summary>
    ValueTask<JobTicket> EnqueueAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default);

    /// <summary>The job as it stands, or <see langword="null"/> when the queue does not know it (any more).</summary>
    ValueTask<JobSnapshot?> GetAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Cancels a queued or running job. False when it is unknown or already finished.</summary>
    ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default);
}

/// <summary>Runs one job. The server is the executor: it finds the function, binds the arguments, captures output.</summary>
public interface IJobExecutor
{
    /// <summary>Runs <paramref name="request"/>, reporting console output to <paramref name="output"/> as it is written.</summary>
    ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken);
}

/// <summary>
/// Receives a job's output and outcome as they happen. Calls for one job never overlap, and every
/// output comes before the outcome. They may come from the worker's thread: return quickly.
/// </summary>
public interface IJobObserver
{
    /// <summary>A piece of output.</summary>
    void OnOutput(OutputStream stream, string text);

    /// <summary>The job ended; this is the last call.</summary>
    void OnCompleted(JobOutcome outcome);
}

/// <summary>Where a running job's output goes.</summary>
public interface IJobOutput
{
    /// <summary>Records and relays a piece of output.</summary>
    void Write(OutputStream stream, string text);
}
