using IpyRpc.Protocol;

namespace IpyRpc.Jobs;

/// <summary>Where a job is in its life.</summary>
public enum JobState
{
    /// <summary>Waiting for a worker.</summary>
    Queued,
    /// <summary>A worker holds it and runs it.</summary>
    Running,
    /// <summary>Finished with a result.</summary>
    Succeeded,
    /// <summary>Finished with an error.</summary>
    Failed,
    /// <summary>Cancelled before or while it ran.</summary>
    Cancelled,
    /// <summary>Reached its deadline, queued or running.</summary>
    TimedOut,
}

/// <summary>Helpers on <see cref="JobState"/>.</summary>
public static class JobStates
{
    /// <summary>Whether the job has ended (it has an outcome).</summary>
    public static bool IsFinished(this JobState state) => state >= JobState.Succeeded;

    /// <summary>The wire name: <c>queued</c>, <c>running</c>, <c>succeeded</c>, <c>failed</c>, <c>cancelled</c>, <c>timed_out</c>.</summary>
    public static string WireName(this JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Running => "running",
        JobState.Succeeded => "succeeded",
        JobState.Failed => "failed",
        JobState.Cancelled => "cancelled",
        _ => "timed_out",
    };

    /// <summary>The state named <paramref name="name"/> on the wire, or <see langword="null"/>.</summary>
    public static JobState? Parse(string? name) => name switch
    {
        "queued" => JobState.Queued,
        "running" => JobState.Running,
        "succeeded" => JobState.Succeeded,
        "failed" => JobState.Failed,
        "cancelled" => JobState.Cancelled,
        "timed_out" => JobState.TimedOut,
        _ => null,
    };
}

/// <summary>
/// A call turned into a job: everything a worker needs to run it, as plain data, so a durable
/// queue can store it and a worker in another process can take it.
/// </summary>
public sealed record JobRequest
{
    private string _id = "";

    /// <summary>The job's id. Queues mint it on submit: whatever is set here is replaced.</summary>
    public string Id { get => _id; init => _id = value; }

    /// <summary>
    /// Made by a server for one submit and used by nothing else after it: an in-memory queue may give it its id
    /// in place instead of copying it (a request anyone else made, or one that already has an id, is copied).
    /// </summary>
    internal bool HandedOver { get; init; }

    /// <summary>This request with the id <paramref name="id"/>: itself when it was handed over and has none yet, else a copy.</summary>
    internal JobRequest WithId(string id)
    {
        if (!HandedOver || _id.Length != 0) return this with { Id = id };
        _id = id;
        return this;
    }

    /// <summary>The exported function name.</summary>
    public required string Function { get; init; }

    /// <summary>The encoded arguments (an array or a map). Released as soon as the job finishes.</summary>
    public ReadOnlyMemory<byte> Arguments { get; init; }

    /// <summary>
    /// The pooled arrays <see cref="Arguments"/> is a slice of, when the call's transport rented them:
    /// an in-memory queue holds one reference until the job ends, an executor one while the function
    /// runs (a durable queue copies the arguments into its store and leaves the arrays to the collector).
    /// Never stored or sent.
    /// </summary>
    public PooledParts? ArgumentsPool { get; init; }

    /// <summary>The serialization of <see cref="Arguments"/>.</summary>
    public Serialization InputSerialization { get; init; } = Serialization.MessagePack;

    /// <summary>The serialization the result is to be written in.</summary>
    public Serialization OutputSerialization { get; init; } = Serialization.MessagePack;

    /// <summary>
    /// When the job must have finished, absolute: a timeout counts from the moment the server
    /// received the call, time spent queued included. A job past it ends <see cref="JobState.TimedOut"/>.
    /// </summary>
    public DateTimeOffset? Deadline { get; init; }

    /// <summary>When the call was received.</summary>
    public DateTimeOffset CreatedAt { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>
    /// Submitted as a job (rather than called): it outlives its submitter's connection and its
    /// result is kept for whoever attaches, until the retention rules release it.
    /// </summary>
    public bool Detached { get; init; }

    /// <summary>
    /// A plain call that is cancelled when its caller's connection drops (not submitted, and its function not set to outlive
    /// the connection). Nothing outside the server holding that connection can know of such a job before a message of it
    /// reaches the caller, so a durable queue whose own worker takes it at once may write it to its store only when it ends,
    /// when it has output, or when it has run for a while (<see cref="SqliteJobQueue"/> does). Not stored or sent.
    /// </summary>
    public bool EndsWithCaller { get; init; }

    /// <summary>Who called: the job's owner, and what a function taking an <see cref="IpyRpcConnection"/> sees on whichever worker runs it.</summary>
    public JobCaller? Caller { get; init; }

    /// <summary>The W3C trace context (<c>traceparent</c>) of the span that queued the job: the worker's span joins that trace, in whichever process it runs.</summary>
    public string? TraceParent { get; init; }

    /// <summary>Whether the result stays with the process that runs the job (in its data store) and the outcome is a pointer to it.</summary>
    public bool ReturnPointer { get; init; }

    /// <summary>For a pointer result: how long its holder keeps the value (unset: the holder's default).</summary>
    public TimeSpan? PointerTimeToLive { get; init; }
}

/// <summary>Who submitted a job, as plain data that a durable queue stores and a worker elsewhere reads.</summary>
/// <param name="ConnectionId">The caller's connection (<see cref="IpyRpcConnection.Id"/>).</param>
/// <param name="Transport">Its transport.</param>
/// <param name="RemoteAddress">Where it was.</param>
/// <param name="Principal">Who it was: name, authentication type and claims.</param>
public sealed record JobCaller(string ConnectionId, string Transport, string? RemoteAddress, System.Security.Claims.ClaimsPrincipal Principal)
{
    /// <summary>Who it was: name, authentication type and claims.</summary>
    public System.Security.Claims.ClaimsPrincipal Principal
    {
        get;
        init
        {
            field = value;
            Name = value.Identity?.Name;
        }
    } = Principal;

    /// <summary>The principal's name, which owns the job.</summary>
    /// <remarks>Read once, as the caller is made: the principal's identity is found by going through its identities, each time it is asked for.</remarks>
    public string? Name { get; private init; } = Principal.Identity?.Name;

    /// <summary>The caller of <paramref name="connection"/>.</summary>
    public static JobCaller Of(IpyRpcConnection connection) => new(connection.Id, connection.Transport, connection.RemoteAddress, connection.Principal);
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

    /// <summary>
    /// The pooled arrays <see cref="Result"/> is a slice of, when the function's result was encoded into one
    /// and the job is an in-memory queue's: the queue holds a reference until the result is released (delivered
    /// or evicted). A reader that keeps <see cref="Result"/> past the event it came with takes a reference of its
    /// own (<see cref="PooledParts.TryAcquire"/>) or copies it. Never stored or sent.
    /// </summary>
    public PooledParts? ResultPool { get; init; }

    /// <summary>The error, when it did not succeed.</summary>
    public RemoteError? Error { get; init; }

    /// <summary>A successful outcome.</summary>
    public static JobOutcome Success(ReadOnlyMemory<byte> result, Serialization serialization)
        => new() { State = JobState.Succeeded, Result = result, ResultSerialization = serialization };

    /// <summary>A successful outcome whose result is a slice of the <paramref name="pool"/> arrays.</summary>
    public static JobOutcome Success(ReadOnlyMemory<byte> result, Serialization serialization, PooledParts? pool)
        => new() { State = JobState.Succeeded, Result = result, ResultSerialization = serialization, ResultPool = pool };

    /// <summary>An unsuccessful outcome.</summary>
    public static JobOutcome Failure(JobState state, RemoteError error) => new() { State = state, Error = error };

    /// <summary>The outcome of a job whose deadline passed.</summary>
    public static JobOutcome DeadlinePassed(JobRequest request, bool whileQueued) => Failure(JobState.TimedOut, new RemoteError
    {
        Code = Protocol.ErrorCodes.Timeout,
        Message = whileQueued
            ? $"{request.Function} reached its timeout (deadline {request.Deadline:O}) while it waited in the queue; it never ran."
            : $"{request.Function} did not finish within its timeout (deadline {request.Deadline:O}).",
    });

    /// <summary>The outcome of a job cancelled by request.</summary>
    public static JobOutcome CancelledBy(JobRequest request, bool whileQueued) => Failure(JobState.Cancelled, new RemoteError
    {
        Code = Protocol.ErrorCodes.Cancelled,
        Message = whileQueued ? $"{request.Function} was cancelled before it started." : $"{request.Function} was cancelled.",
    });

    /// <summary>What a watcher gets for a job that succeeded but whose result was delivered and released.</summary>
    public static JobOutcome Released(JobRequest request) => Released(request.Id, request.Function);

    internal static JobOutcome Released(string jobId, string function) => new()
    {
        State = JobState.Succeeded,
        Error = new RemoteError
        {
            Code = Protocol.ErrorCodes.NotFound,
            Message = $"Job {jobId} ({function}) succeeded, but its result was delivered to its caller and released. Submit the call as a job to keep its result for later.",
        },
    };

    /// <summary>The same outcome without the result bytes, for a job whose result was released.</summary>
    public JobOutcome WithoutResult() => (State, Error, ResultSerialization) switch
    {
        // Shared: every delivered call's record keeps one.
        (JobState.Succeeded, null, Serialization.MessagePack) => SucceededWithoutResult.MessagePack,
        (JobState.Succeeded, null, Serialization.Json) => SucceededWithoutResult.Json,
        _ => this with { Result = ReadOnlyMemory<byte>.Empty, ResultPool = null },
    };

    private static class SucceededWithoutResult
    {
        public static readonly JobOutcome MessagePack = new() { State = JobState.Succeeded, ResultSerialization = Serialization.MessagePack };
        public static readonly JobOutcome Json = new() { State = JobState.Succeeded, ResultSerialization = Serialization.Json };
    }

    /// <summary>The same outcome with the result in an array of its own (for a reader that keeps it while the pooled one may go back).</summary>
    internal JobOutcome Detached() => ResultPool is null ? this : this with { Result = Result.ToArray(), ResultPool = null };
}

/// <summary>What kind of <see cref="JobEvent"/> it is.</summary>
public enum JobEventKind
{
    /// <summary>A worker started the job (<see cref="JobEvent.Attempt"/> says which attempt: more than 1 after a redelivery).</summary>
    Started,
    /// <summary>The job wrote console output.</summary>
    Output,
    /// <summary>The job ended; the event carries the outcome and is the last one.</summary>
    Completed,
}

/// <summary>
/// Something that happened to a job, as its queue records it. Every event has a sequence number,
/// 1, 2, 3… per job, so a watcher that saw events up to N can ask for the rest.
/// </summary>
/// <param name="Sequence">The event's place in the job's record.</param>
/// <param name="Kind">What happened.</param>
/// <param name="Stream">For output: which stream.</param>
/// <param name="Text">For output: the text.</param>
/// <param name="Outcome">For completion: how it ended.</param>
/// <param name="Attempt">For a start: which attempt it is (1 for the first).</param>
public readonly record struct JobEvent(long Sequence, JobEventKind Kind, OutputStream Stream = OutputStream.Stdout, string? Text = null, JobOutcome? Outcome = null, int Attempt = 0);

/// <summary>A piece of a job's recorded output.</summary>
/// <param name="Stream">Which stream.</param>
/// <param name="Text">The text.</param>
public readonly record struct OutputChunk(OutputStream Stream, string Text);

/// <summary>A job as it stands: for listings, status queries and callers that come back.</summary>
public sealed record JobInfo
{
    /// <summary>The id.</summary>
    public required string Id { get; init; }

    /// <summary>The function.</summary>
    public required string Function { get; init; }

    /// <summary>The queue holding it.</summary>
    public string Queue { get; init; } = "";

    /// <summary>The state.</summary>
    public required JobState State { get; init; }

    /// <summary>When it was received.</summary>
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>When a worker first started it.</summary>
    public DateTimeOffset? StartedAt { get; init; }

    /// <summary>When it ended.</summary>
    public DateTimeOffset? CompletedAt { get; init; }

    /// <summary>Its deadline, if it has one.</summary>
    public DateTimeOffset? Deadline { get; init; }

    /// <summary>How many times a worker has started it (more than 1 after a lease lapsed and it was redelivered).</summary>
    public int Attempts { get; init; }

    /// <summary>The worker running it (or that ran it last).</summary>
    public string? Worker { get; init; }

    /// <summary>Whether it was submitted as a job (it survives its submitter's connection).</summary>
    public bool Detached { get; init; }

    /// <summary>The name of the principal that submitted it (<see langword="null"/> for an anonymous caller).</summary>
    public string? Owner { get; init; }

    /// <summary>The sequence number of its last recorded event.</summary>
    public long LastSequence { get; init; }

    /// <summary>The output recorded so far, when asked for (<c>withOutput</c>).</summary>
    public IReadOnlyList<OutputChunk> Output { get; init; } = [];

    /// <summary>How it ended, once it has. The result bytes are empty once the result was released.</summary>
    public JobOutcome? Outcome { get; init; }

    /// <summary>Whether its result has been released (delivered to its only caller, or dropped by retention).</summary>
    public bool ResultReleased { get; init; }

    /// <summary>Bytes the queue keeps for it: arguments (until it finishes), result (until released) and recorded output.</summary>
    public long RetainedBytes { get; init; }
}

/// <summary>What <see cref="IJobQueue.ListAsync"/> returns.</summary>
public sealed record JobQuery
{
    /// <summary>Only jobs in this state.</summary>
    public JobState? State { get; init; }

    /// <summary>Only jobs whose function matches this glob.</summary>
    public string? Function { get; init; }

    /// <summary>At most this many, newest first.</summary>
    public int Limit { get; init; } = 100;

    /// <summary>Whether a job in <paramref name="state"/> of <paramref name="function"/> passes the filter.</summary>
    public bool Matches(JobState state, string function)
        => (State is null || State == state) && (Function is null || Glob.IsMatch(Function, function));
}

/// <summary>A submitted job as its submitter holds it: the id and, when it gave an observer, the subscription to stop observing.</summary>
/// <param name="JobId">The id the queue minted.</param>
/// <param name="Subscription">Stops the observer given to <see cref="IJobQueue.SubmitAsync"/> (the job goes on); <see langword="null"/> when none was given.</param>
public readonly record struct JobTicket(string JobId, IDisposable? Subscription);

/// <summary>How long finished jobs are remembered, and how many bytes of theirs are kept.</summary>
public sealed record JobRetention
{
    /// <summary>A finished job is forgotten this long after it ended.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromHours(24);

    /// <summary>
    /// The most bytes of results and recorded output kept over all finished jobs. Past it, the
    /// oldest finished jobs lose their results and output first (their records stay until <see cref="MaxAge"/>).
    /// </summary>
    public long MaxBytes { get; init; } = 512L * 1024 * 1024;

    /// <summary>The most output kept in one job's record; past it the oldest output is dropped (the live stream is not limited).</summary>
    public long MaxOutputBytesPerJob { get; init; } = 8L * 1024 * 1024;
}
