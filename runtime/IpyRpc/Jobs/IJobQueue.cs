namespace IpyRpc.Jobs;

/// <summary>
/// A job queue: the broker between whoever submits calls (a server) and whoever runs them
/// (workers: the server's own, or <see cref="IpyRpcWorker"/>s in other processes and on other machines).
/// </summary>
/// <remarks>
/// <para>The submitter's half: <see cref="SubmitAsync"/> mints the job's id and queues it;
/// <see cref="WatchAsync"/> replays a job's recorded events and then delivers the rest live;
/// <see cref="GetAsync"/>, <see cref="ListAsync"/>, <see cref="CancelAsync"/> and <see cref="ReleaseAsync"/>.</para>
/// <para>The worker's half: <see cref="TakeAsync"/> leases the next job; the <see cref="JobLease"/>
/// records output, heartbeats and writes the outcome back. A lease that is not renewed in time
/// lapses and the job is delivered again (at-least-once); only the current lease can complete a
/// job, so its watchers see exactly one outcome.</para>
/// <para>Every queue keeps the same promises, checked by one contract test suite: output is recorded
/// and delivered in order and before the outcome; a queued job can be cancelled or time out without
/// running; cancelling a running job fires the token of whichever worker runs it; a finished job's
/// arguments are released at once and its result only while someone may come back for it
/// (<see cref="JobRetention"/>).</para>
/// </remarks>
public interface IJobQueue : IAsyncDisposable
{
    /// <summary>A name for listings and config (<see cref="FunctionOptions.Queue"/>).</summary>
    string Name { get; }

    /// <summary>Whether jobs survive this process (SQLite, Redis), so workers elsewhere can take them and callers can come back after a restart.</summary>
    bool IsDurable { get; }

    /// <summary>
    /// Queues a job under a new id. When <paramref name="observer"/> is given it hears of the id
    /// (<see cref="IJobObserver.OnAccepted"/>) before any worker can take the job, then every event.
    /// </summary>
    ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Delivers the job's recorded events after <paramref name="afterSequence"/> to <paramref name="observer"/>,
    /// then the rest as they happen, up to and including its completion. Dispose the result to stop.
    /// </summary>
    /// <returns>The subscription, or <see langword="null"/> when the queue does not know the job (any more).</returns>
    ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default);

    /// <summary>The job as it stands, or <see langword="null"/> when the queue does not know it (any more).</summary>
    ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default);

    /// <summary>Jobs the queue remembers, newest first.</summary>
    ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Cancels a job: a queued one ends <see cref="JobState.Cancelled"/> at once and never runs; a
    /// running one has its worker's token cancelled. False when it is unknown or already finished.
    /// </summary>
    ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>Says the job's outcome reached the only caller that wanted it: its result need not be kept.</summary>
    ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Leases the next job for <paramref name="workerId"/>, waiting until there is one. Jobs whose
    /// lease lapsed come back this way too, with a higher <see cref="JobLease.Attempt"/>.
    /// </summary>
    /// <param name="workerId">Who takes it, for listings.</param>
    /// <param name="leaseDuration">How long the lease holds without renewal; <see cref="Timeout.InfiniteTimeSpan"/> for workers that live and die with the queue object.</param>
    /// <param name="cancellationToken">
    /// Stops waiting: once its cancellation has returned, the call takes nothing submitted or handed back after it
    /// (a job on its way to it then goes to another worker as if never taken: its attempts not counted).
    /// </param>
    /// <returns>The lease, or <see langword="null"/> when the queue is shutting down or the wait was cancelled.</returns>
    ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken);

    /// <summary>
    /// The key the servers and workers that share this queue seal the pointers they make with, and check the pointers they
    /// are given against before they connect to a holder (docs/SECURITY.md): kept in the queue's store (a SQLite file, a
    /// Redis database), so every process that opens it has the same one. Empty: the queue has none, pointers made beside
    /// it carry no seal, and its servers and workers resolve pointers held in other processes only from the holders their
    /// <c>TrustedHolders</c> list. A queue of your own keeps 32 random bytes, made once, where all its processes read them.
    /// </summary>
    ReadOnlyMemory<byte> PointerKey => ReadOnlyMemory<byte>.Empty;
}

/// <summary>
/// A worker's hold on one job. Output written to it is recorded and relayed in order; the worker
/// renews it every <see cref="RenewEvery"/> (when set) and ends it with <see cref="CompleteAsync"/>.
/// </summary>
public abstract class JobLease : IJobOutput
{
    /// <summary>Creates a lease.</summary>
    protected JobLease(JobRequest request, int attempt, CancellationToken cancellationToken)
    {
        Request = request;
        Attempt = attempt;
        CancellationToken = cancellationToken;
    }

    /// <summary>The job.</summary>
    public JobRequest Request { get; }

    /// <summary>Which delivery this is: 1 the first time, more after a lapsed lease.</summary>
    public int Attempt { get; }

    /// <summary>Fires when the job is cancelled (by a caller or by the queue shutting down) while this lease holds it.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>How often <see cref="RenewAsync"/> must be called for the lease to hold; <see langword="null"/> when it never lapses.</summary>
    public abstract TimeSpan? RenewEvery { get; }

    /// <summary>Records and relays a piece of output. Never blocks on I/O: durable queues write it in the background, in order.</summary>
    public abstract void Write(OutputStream stream, string text);

    /// <summary>Extends the lease. False when it was lost (it lapsed and another worker took the job, or the job ended): stop working on it.</summary>
    public abstract ValueTask<bool> RenewAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Records the outcome after every piece of output written before it. False when this lease no
    /// longer holds the job (the outcome is then dropped: the job has or will have another).
    /// </summary>
    public abstract ValueTask<bool> CompleteAsync(JobOutcome outcome, CancellationToken cancellationToken = default);

    /// <summary>Hands the job back unfinished (the worker is shutting down), so another worker takes it now rather than after the lease lapses.</summary>
    public abstract ValueTask AbandonAsync(CancellationToken cancellationToken = default);
}

/// <summary>Runs one job. <see cref="IpyRpcServer"/> and <see cref="IpyRpcWorker"/> run the functions registered with them.</summary>
public interface IJobExecutor
{
    /// <summary>Runs <paramref name="request"/>, reporting console output to <paramref name="output"/> as it is written.</summary>
    ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken);
}

/// <summary>
/// Hears of one job's events, in order and never two at once. Calls may come from a worker's or a
/// transport's thread: return quickly.
/// </summary>
public interface IJobObserver
{
    /// <summary>The job was queued under <paramref name="jobId"/>; comes first, before any event.</summary>
    void OnAccepted(string jobId);

    /// <summary>Something happened to the job. The <see cref="JobEventKind.Completed"/> event is the last call.</summary>
    void OnEvent(in JobEvent jobEvent);
}

/// <summary>Where a running job's output goes.</summary>
public interface IJobOutput
{
    /// <summary>Records and relays a piece of output.</summary>
    void Write(OutputStream stream, string text);
}
