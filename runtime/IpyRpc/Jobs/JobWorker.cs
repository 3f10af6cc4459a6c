using System.Collections.Concurrent;

namespace IpyRpc.Jobs;

/// <summary>Options of a <see cref="JobWorker"/>.</summary>
public sealed record JobWorkerOptions
{
    /// <summary>How many jobs run at once.</summary>
    public int Concurrency { get; init; } = 16;

    /// <summary>
    /// How long a lease holds without renewal. The worker renews at a third of it; a worker that
    /// dies (or stalls) that long has its jobs delivered again. Ignored by queues whose leases never lapse.
    /// </summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Names the worker in job listings. Default: host name, process id and a random suffix.</summary>
    public string? WorkerId { get; init; }

    /// <summary>
    /// Where the worker reports what goes wrong around jobs: a take that fails (a SQLite file another process holds
    /// locked), an outcome it could not record. A Redis queue's take waits out an outage instead; the queue itself says
    /// so through <c>RedisJobQueueOptions.Logger</c>.
    /// </summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; init; }
}

/// <summary>
/// Takes jobs from one queue and runs them with an executor: up to <see cref="JobWorkerOptions.Concurrency"/>
/// at once, renewing each lease while it runs, writing output and outcome back through the lease.
/// A job whose lease is lost (it lapsed and another worker took it) is stopped and its outcome dropped.
/// </summary>
public sealed class JobWorker : IAsyncDisposable
{
    private readonly IJobQueue _queue;
    private readonly IJobExecutor _executor;
    private readonly JobWorkerOptions _options;
    private readonly CancellationTokenSource _taking = new();
    private readonly CancellationTokenSource _abort = new();
    // Jobs running under leases that can be lost, with the token that stops each: the heartbeat renews them. Jobs
    // under leases that never lapse (an in-memory queue's) are only counted, in _unrenewed.
    private readonly ConcurrentDictionary<JobLease, CancellationTokenSource> _running = new();
    private int _unrenewed;
    private Task[] _slots = [];
    private Task _heartbeat = Task.CompletedTask;
    private int _started;
    private int _stopped;

    /// <summary>Creates a worker; <see cref="Start"/> sets it going.</summary>
    public JobWorker(IJobQueue queue, IJobExecutor executor, JobWorkerOptions? options = null)
    {
        _queue = queue;
        _executor = executor;
        _options = options ?? new JobWorkerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Concurrency, 1, nameof(options));
        Id = _options.WorkerId ?? $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..6]}";
    }

    /// <summary>The worker's id, as job listings show it.</summary>
    public string Id { get; }

    /// <summary>The queue it takes jobs from.</summary>
    public IJobQueue Queue => _queue;

    /// <summary>How many jobs it is running now.</summary>
    public int Running => _running.Count + Volatile.Read(ref _unrenewed);

    /// <summary>Starts taking jobs.</summary>
    public void Start()
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) throw new InvalidOperationException("The worker has already been started.");
        _slots = [.. Enumerable.Range(0, _options.Concurrency).Select(_ => Task.Run(SlotAsync))];
        _heartbeat = Task.Run(HeartbeatAsync);
    }

    private void Log(Microsoft.Extensions.Logging.LogLevel level, Exception e, string message, params object?[] args)
    {
        if (_options.Logger is { } log) Microsoft.Extensions.Logging.LoggerExtensions.Log(log, level, e, message, args);
    }

    private async Task SlotAsync()
    {
        TimeSpan lease = _queue.IsDurable ? _options.LeaseDuration : Timeout.InfiniteTimeSpan;
        while (!_taking.IsCancellationRequested)
        {
            JobLease? job;
            try
            {
                job = await _queue.TakeAsync(Id, lease, _taking.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException && !_taking.IsCancellationRequested)
            {
                // The store is unreachable for now (a Redis restart, a locked database): try again shortly.
                Log(Microsoft.Extensions.Logging.LogLevel.Warning, e, "Worker {Worker} could not take a job from {Queue}; retrying", Id, _queue.Name);
                await DelayQuietly(TimeSpan.FromMilliseconds(250), _taking.Token).ConfigureAwait(false);
                continue;
            }
            catch (Exception) when (_taking.IsCancellationRequested)
            {
                return;
            }

            if (job is null) return;
            await RunAsync(job).ConfigureAwait(false);
        }
    }

    private async Task RunAsync(JobLease lease)
    {
        // Leases that can be lost get a token of their own, so losing one (or aborting) stops the function.
        CancellationTokenSource? own = lease.RenewEvery is null ? null : CancellationTokenSource.CreateLinkedTokenSource(lease.CancellationToken, _abort.Token);
        if (own is null) Interlocked.Increment(ref _unrenewed);
        else _running[lease] = own;
        try
        {
            JobOutcome outcome;
            try
            {
                outcome = await _executor.ExecuteAsync(lease.Request, lease, own?.Token ?? lease.CancellationToken).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                // Executors turn function failures into outcomes; anything here is a bug in the executor.
                Log(Microsoft.Extensions.Logging.LogLevel.Error, e, "The executor failed on job {Job} ({Function})", lease.Request.Id, lease.Request.Function);
                outcome = JobOutcome.Failure(JobState.Failed, RemoteError.FromException(e, Protocol.ErrorCodes.Internal, ErrorDetail.TypeAndMessage));
            }

            if (_abort.IsCancellationRequested && own is not null)
            {
                // Shutting down past the drain time: hand the job back so another worker runs it now.
                await AbandonQuietlyAsync(lease).ConfigureAwait(false);
                return;
            }

            if (own?.IsCancellationRequested == true && !lease.CancellationToken.IsCancellationRequested)
            {
                return; // the lease was lost: the job belongs to another worker now
            }

            await CompleteAsync(lease, outcome).ConfigureAwait(false);
        }
        finally
        {
            if (own is null) Interlocked.Decrement(ref _unrenewed);
            else _running.TryRemove(lease, out _);
            own?.Dispose();
        }
    }

    private async Task CompleteAsync(JobLease lease, JobOutcome outcome)
    {
        // A store that is briefly unreachable must not cost the outcome: retry while the lease could still hold.
        DateTime giveUp = DateTime.UtcNow + (lease.RenewEvery is { } every ? every * 3 : TimeSpan.Zero);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                await lease.CompleteAsync(outcome).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (DateTime.UtcNow < giveUp && !_abort.IsCancellationRequested)
            {
                Log(Microsoft.Extensions.Logging.LogLevel.Warning, e, "Recording the outcome of job {Job} ({Function}) failed; retrying", lease.Request.Id, lease.Request.Function);
                await DelayQuietly(TimeSpan.FromMilliseconds(Math.Min(2000, 50 << Math.Min(attempt, 6))), _abort.Token).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Log(Microsoft.Extensions.Logging.LogLevel.Error, e, "The outcome of job {Job} ({Function}) could not be recorded; its lease will lapse and it runs again", lease.Request.Id, lease.Request.Function);
                return; // the lease lapses and the job is delivered again
            }
        }
    }

    private async Task HeartbeatAsync()
    {
        TimeSpan every = _options.LeaseDuration / 3;
        while (!_abort.IsCancellationRequested)
        {
            await DelayQuietly(every, _abort.Token).ConfigureAwait(false);
            foreach ((JobLease lease, CancellationTokenSource own) in _running)
            {
                bool held;
                try
                {
                    held = await lease.RenewAsync(_abort.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (!_abort.IsCancellationRequested)
                {
                    Log(Microsoft.Extensions.Logging.LogLevel.Warning, e, "Renewing the lease of job {Job} failed; the next beat tries again", lease.Request.Id);
                    continue; // the store is unreachable: keep running, the next beat tries again
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                if (!held)
                {
                    try
                    {
                        own.Cancel();
                    }
                    catch (ObjectDisposedException)
                    {
                    }
                }
            }
        }
    }

    /// <summary>
    /// Stops taking jobs and lets running ones finish for up to <paramref name="drainTimeout"/>;
    /// then cancels them and hands their jobs back to the queue for another worker.
    /// </summary>
    public async Task StopAsync(TimeSpan drainTimeout)
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1) return;
        _taking.Cancel();
        Task all = Task.WhenAll(_slots);
        try
        {
            await all.WaitAsync(drainTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        _abort.Cancel();
        foreach (CancellationTokenSource own in _running.Values)
        {
            try
            {
                own.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        await all.ConfigureAwait(false);
        await _heartbeat.ConfigureAwait(false);
    }

    /// <summary>Stops at once: running jobs are cancelled and handed back (see <see cref="StopAsync"/>).</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.Zero).ConfigureAwait(false);
        _taking.Dispose();
        _abort.Dispose();
    }

    private static async Task DelayQuietly(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    // Not a lambda in RunAsync: capturing the lease there made a closure for every job, abandoned or not.
    private static async Task AbandonQuietlyAsync(JobLease lease)
    {
        try
        {
            await lease.AbandonAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The lease lapses instead, later.
        }
    }
}
