using System.Collections.Concurrent;
using System.Threading.Channels;
using IpyRpc.Protocol;

namespace IpyRpc.Jobs;

/// <summary>Options of the <see cref="InMemoryJobQueue"/>.</summary>
public sealed record InMemoryJobQueueOptions
{
    /// <summary>How many jobs run at once (the receivers' thread count). One runs calls strictly one at a time.</summary>
    public int Concurrency { get; init; } = 64;

    /// <summary>How many finished jobs are kept for <see cref="IJobQueue.GetAsync"/>; older ones are forgotten.</summary>
    public int RetainCompleted { get; init; } = 1000;

    /// <summary>How much output (in characters) a job keeps for its snapshot; the live stream is not limited.</summary>
    public int RetainOutputChars { get; init; } = 1 << 20;
}

/// <summary>
/// The default queue: a channel and a fixed set of worker tasks in this process. Nothing is
/// durable; in exchange a job costs a channel write and a few small objects.
/// </summary>
public sealed class InMemoryJobQueue : IJobQueue
{
    private readonly InMemoryJobQueueOptions _options;
    private readonly Channel<Job> _pending = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleWriter = false, SingleReader = false });
    private readonly ConcurrentDictionary<string, Job> _jobs = new();
    private readonly ConcurrentQueue<string> _completed = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _idPrefix = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.Next())).ToLowerInvariant() + "-";
    private Task[] _workers = [];
    private long _nextId;
    private IJobExecutor? _executor;

    /// <summary>Creates the queue.</summary>
    public InMemoryJobQueue(InMemoryJobQueueOptions? options = null)
    {
        _options = options ?? new InMemoryJobQueueOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Concurrency, 1, nameof(options));
    }

    /// <inheritdoc/>
    public string Name => "memory";

    /// <summary>Makes a new job id.</summary>
    public string NewId() => _idPrefix + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public void Start(IJobExecutor executor)
    {
        if (Interlocked.CompareExchange(ref _executor, executor, null) is not null)
        {
            throw new InvalidOperationException("The queue has already been started.");
        }

        _workers = [.. Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(WorkAsync))];
    }

    /// <inheritdoc/>
    public ValueTask<JobTicket> EnqueueAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        var job = new Job(request, _options.RetainOutputChars, observer);
        if (!_jobs.TryAdd(request.Id, job))
        {
            throw new InvalidOperationException($"A job with id {request.Id} is already queued.");
        }

        if (!_pending.Writer.TryWrite(job))
        {
            _jobs.TryRemove(request.Id, out _);
            throw new ObjectDisposedException(nameof(InMemoryJobQueue), "The queue is shutting down.");
        }

        return new ValueTask<JobTicket>(new JobTicket(request.Id, job.Events?.Reader));
    }

    /// <inheritdoc/>
    public ValueTask<JobSnapshot?> GetAsync(string jobId, CancellationToken cancellationToken = default)
        => new(_jobs.TryGetValue(jobId, out Job? job) ? job.Snapshot() : null);

    /// <inheritdoc/>
    public ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default)
    {
        if (!_jobs.TryGetValue(jobId, out Job? job))
        {
            return new(false);
        }

        bool cancelled = job.Cancel();
        if (cancelled && job.TryCompleteIfQueued(new RemoteError { Code = ErrorCodes.Cancelled, Message = "The job was cancelled before it started." }))
        {
            Retire(job);
        }

        return new(cancelled);
    }

    private async Task WorkAsync()
    {
        ChannelReader<Job> reader = _pending.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out Job? job))
            {
                await RunAsync(job).ConfigureAwait(false);
            }
        }
    }

    private async Task RunAsync(Job job)
    {
        if (!job.TryStart())
        {
            return; // cancelled while queued
        }

        JobOutcome outcome;
        try
        {
            outcome = await _executor!.ExecuteAsync(job.Request, job, job.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The executor turns function failures into outcomes; anything here is a server bug.
            outcome = JobOutcome.Failure(JobState.Failed, RemoteError.FromException(e, ErrorCodes.Internal));
        }

        job.Complete(outcome);
        Retire(job);
    }

    private void Retire(Job job)
    {
        _completed.Enqueue(job.Request.Id);
        while (_completed.Count > _options.RetainCompleted && _completed.TryDequeue(out string? old))
        {
            _jobs.TryRemove(old, out _);
        }
    }

    /// <summary>Stops taking jobs, cancels the running ones and waits for the workers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        _stopping.Cancel();
        _pending.Writer.TryComplete();
        foreach (Job job in _jobs.Values)
        {
            if (job.Cancel())
            {
                job.TryCompleteIfQueued(new RemoteError { Code = ErrorCodes.Cancelled, Message = "The server is shutting down." });
            }
        }

        await Task.WhenAll(_workers).ConfigureAwait(false);
        _stopping.Dispose();
    }

    private sealed class Job(JobRequest request, int retainOutputChars, IJobObserver? observer) : IJobOutput
    {
        private readonly CancellationTokenSource _cts = new();
        private readonly object _gate = new();
        private readonly List<OutputChunk> _output = [];
        private int _retained;
        private JobState _state = JobState.Queued;
        private DateTimeOffset? _started;
        private DateTimeOffset? _completed;
        private JobOutcome? _outcome;

        public JobRequest Request { get; } = request;

        // Only when nobody observes: a channel costs several allocations per call.
        public Channel<JobEvent>? Events { get; } = observer is null ? Channel.CreateUnbounded<JobEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false }) : null;

        public CancellationToken Token => _cts.Token;

        public bool TryStart()
        {
            lock (_gate)
            {
                if (_state != JobState.Queued) return false;
                _state = JobState.Running;
                _started = DateTimeOffset.UtcNow;
            }

            Events?.Writer.TryWrite(new JobEvent(JobEventKind.Started));
            return true;
        }

        public bool Cancel()
        {
            lock (_gate)
            {
                if (_state is not (JobState.Queued or JobState.Running)) return false;
            }

            try
            {
                _cts.Cancel();
            }
            catch (ObjectDisposedException)
            {
                return false;
            }

            return true;
        }

        public bool TryCompleteIfQueued(RemoteError error)
        {
            lock (_gate)
            {
                if (_state != JobState.Queued) return false;
            }

            Complete(JobOutcome.Failure(JobState.Cancelled, error));
            return true;
        }

        public void Write(OutputStream stream, string text)
        {
            lock (_gate)
            {
                if (_outcome is not null) return;
                if (_retained < retainOutputChars)
                {
                    _output.Add(new OutputChunk(stream, text));
                    _retained += text.Length;
                }

                // Under the lock, so output never lands after the completion event.
                if (observer is not null) observer.OnOutput(stream, text);
                else Events!.Writer.TryWrite(new JobEvent(JobEventKind.Output, stream, text));
            }
        }

        public void Complete(JobOutcome outcome)
        {
            lock (_gate)
            {
                if (_outcome is not null) return;
                _outcome = outcome;
                _state = outcome.State;
                _completed = DateTimeOffset.UtcNow;
                if (observer is not null)
                {
                    observer.OnCompleted(outcome);
                }
                else
                {
                    Events!.Writer.TryWrite(new JobEvent(JobEventKind.Completed, Outcome: outcome));
                    Events.Writer.TryComplete();
                }
            }

            _cts.Dispose();
        }

        public JobSnapshot Snapshot()
        {
            lock (_gate)
            {
                return new JobSnapshot
                {
                    Id = Request.Id,
                    Function = Request.Function,
                    State = _state,
                    CreatedAt = Request.CreatedAt,
                    StartedAt = _started,
                    CompletedAt = _completed,
                    Output = [.. _output],
                    Outcome = _outcome,
                };
            }
        }
    }
}
