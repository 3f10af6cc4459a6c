using System.Collections.Concurrent;
using System.Globalization;
using IpyRpc.Jobs;
using IpyRpc.MessagePack;
using StackExchange.Redis;

namespace IpyRpc.Redis;

/// <summary>Options of the <see cref="RedisJobQueue"/>.</summary>
public sealed record RedisJobQueueOptions
{
    /// <summary>The queue's name; its keys are <c>ipyrpc:{name}:…</c>. Servers and workers that use the same name share the queue.</summary>
    public string Name { get; init; } = "redis";

    /// <summary>How long finished jobs are remembered and how many bytes of theirs are kept.</summary>
    public JobRetention Retention { get; init; } = new();

    /// <summary>
    /// How often waiting workers look for jobs without being woken (a missed wake-up, a lease that
    /// lapsed) and watchers re-read their jobs' events. New jobs and events normally arrive at once, by pub/sub.
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>Results up to this size ride along with the completion notice; larger ones are read by whoever waits for them.</summary>
    public int InlineResultBytes { get; init; } = 64 * 1024;

    /// <summary>
    /// How long a submit, a job lookup or a release waits for Redis to come back when it is out of reach (restarting,
    /// loading its data, a broken connection) before it fails with <see cref="JobQueueUnavailableException"/>, which the
    /// server sends as <c>unavailable</c>; and how long opening the queue waits for a Redis that is still starting.
    /// Credentials Redis refuses are not tried again. Within it the request is made again; a submit whose answer was
    /// lost is made again without queueing its job twice. Each try may itself wait for the connection up to its timeout
    /// (the configuration's <c>syncTimeout</c>, 5 s by default), so the longest wait is about this plus that.
    /// <see cref="TimeSpan.Zero"/> tries once.
    /// </summary>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where the queue says that Redis went out of reach (a warning, once an outage, with why) and that it is reachable
    /// again (with how long it was away). A worker process's take and report simply wait meanwhile: this is how its log
    /// shows an outage.
    /// </summary>
    public Microsoft.Extensions.Logging.ILogger? Logger { get; init; }
}

/// <summary>
/// A durable queue in Redis (5 or later with streams; 7 recommended): jobs on a Redis Stream read by
/// a consumer group, each worker's leases kept alive by resetting its entries' idle time and taken
/// over with XAUTOCLAIM when they lapse; output and outcomes recorded in a stream per job and
/// announced by pub/sub, so a worker on any machine reports live to a caller on any server.
/// With append-only persistence on, a Redis restart loses no job.
/// </summary>
public sealed class RedisJobQueue : IJobQueue
{
    // A stream entry pending this long with no lease record belongs to a consumer that vanished between reading and taking it.
    private static readonly TimeSpan OrphanIdle = TimeSpan.FromMinutes(10);
    private const string NotQueued = "the call was not queued and did not run; make it again once Redis is back";
    private static readonly RedisValue[] InfoFields = ["function", "state", "created", "started", "completed", "deadline", "attempts", "worker", "detached", "last", "outcome", "released", "retained", "owner"];

    private readonly ConnectionMultiplexer _redis;
    private readonly bool _ownsConnection;
    private readonly IDatabase _db;
    private readonly RedisJobQueueOptions _options;
    private readonly string _prefix;
    private readonly string _consumer;
    private readonly string _idPrefix = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.NextInt64())).ToLowerInvariant()[..10] + "-";
    private readonly object _gate = new();
    private readonly Dictionary<string, List<Watcher>> _watchers = new(StringComparer.Ordinal);
    private readonly LinkedList<Taker> _takers = new();
    private readonly ConcurrentDictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _wake = new(0);
    private readonly SemaphoreSlim _flush = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private Task[] _loops = [];
    private Task? _watching;
    private Task? _working;
    private volatile bool _idle; // the last take found the queue empty and recorded this consumer in P:idle
    private long _nextId;
    private int _disposed;

    private RedisJobQueue(ConnectionMultiplexer redis, bool ownsConnection, RedisJobQueueOptions options)
    {
        _redis = redis;
        _ownsConnection = ownsConnection;
        _db = redis.GetDatabase();
        _options = options;
        _prefix = "ipyrpc:{" + options.Name + "}";
        _consumer = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";
        if (options.Logger is not null)
        {
            redis.ConnectionFailed += OnConnectionFailed;
            redis.ConnectionRestored += OnConnectionRestored;
        }
    }

    private long _outOfReachSince; // Environment.TickCount64 when the connection for commands failed; 0 while it holds

    /// <summary>Says, once an outage, that the connection for commands failed (every attempt to reconnect fails again too).</summary>
    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive || Interlocked.CompareExchange(ref _outOfReachSince, Math.Max(1, Environment.TickCount64), 0) != 0) return;
        Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(_options.Logger!, e.Exception, "The job queue {Queue} cannot reach Redis ({Failure}); it waits for it, and tries again", Name, e.FailureType);
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType != ConnectionType.Interactive) return;
        long since = Interlocked.Exchange(ref _outOfReachSince, 0);
        if (since == 0) return;
        Microsoft.Extensions.Logging.LoggerExtensions.LogInformation(_options.Logger!, "The job queue {Queue} reaches Redis again, after {Seconds:0.#} s", Name, (Environment.TickCount64 - since) / 1000.0);
    }

    /// <summary>Connects to Redis (a StackExchange.Redis configuration string, for example <c>127.0.0.1:6379</c>) and opens the queue.</summary>
    public static async Task<RedisJobQueue> ConnectAsync(string configuration, RedisJobQueueOptions? options = null)
    {
        var config = ConfigurationOptions.Parse(configuration);
        config.AbortOnConnectFail = false; // reconnect by itself when Redis restarts
        ConnectionMultiplexer redis = await ConnectionMultiplexer.ConnectAsync(config).ConfigureAwait(false);
        try
        {
            return await OpenAsync(redis, true, options).ConfigureAwait(false);
        }
        catch
        {
            redis.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens the queue over an existing connection (RESP2 or RESP3), which the caller keeps owning. The queue
    /// subscribes on it as it needs: to job events once it watches a job, to its own wake-ups once it takes.
    /// </summary>
    public static Task<RedisJobQueue> OpenAsync(ConnectionMultiplexer redis, RedisJobQueueOptions? options = null) => OpenAsync(redis, false, options);

    private static async Task<RedisJobQueue> OpenAsync(ConnectionMultiplexer redis, bool owns, RedisJobQueueOptions? options)
    {
        var queue = new RedisJobQueue(redis, owns, options ?? new RedisJobQueueOptions());
        await queue.StartAsync().ConfigureAwait(false);
        return queue;
    }

    // One key for every queue of a Redis database, so pointers pass between queues of one deployment.
    private const string PointerKeyName = "ipyrpc:pointer-key";

    /// <inheritdoc/>
    /// <remarks>Made by the first process to open a queue in the Redis database, and kept there (<c>ipyrpc:pointer-key</c>).</remarks>
    public ReadOnlyMemory<byte> PointerKey { get; private set; }

    private async Task StartAsync()
    {
        // Redis may be starting with this process (one compose file for both): the queue waits for it as a request would.
        await ReachingAsync(async () =>
        {
            try
            {
                await _db.ExecuteAsync("XGROUP", "CREATE", _prefix + ":stream", "workers", "0", "MKSTREAM").ConfigureAwait(false);
            }
            catch (RedisServerException e) when (e.Message.Contains("BUSYGROUP", StringComparison.Ordinal))
            {
                // The group exists: another server or worker created it.
            }

            // The first process to open a queue in this database makes the pointer key; every later one reads it.
            await _db.StringSetAsync(PointerKeyName, System.Security.Cryptography.RandomNumberGenerator.GetBytes(32), when: When.NotExists).ConfigureAwait(false);
            PointerKey = (byte[]?)await _db.StringGetAsync(PointerKeyName).ConfigureAwait(false) ?? throw new InvalidOperationException("The queue's pointer key was not kept.");
            return true;
        }, "the queue was not opened", CancellationToken.None).ConfigureAwait(false);

        _loops = [Task.Run(FetchLoopAsync), Task.Run(FlushLoopAsync), Task.Run(MaintenanceLoopAsync)];
    }

    /// <summary>
    /// Subscribes, once, to what this queue object's watchers need (the jobs' event notices). A queue
    /// object that only works (a worker process) never watches, and so is not sent every job's events.
    /// </summary>
    private Task WatchingAsync() => SubscribedAsync(ref _watching, async () =>
        (await _redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(_prefix + ":events")).ConfigureAwait(false)).OnMessage(m => OnEventNotice(m.Message)));

    /// <summary>
    /// Subscribes, once, to what this queue object's takers need: its own wake-up channel (a submit wakes
    /// one idle consumer) and the cancel notices for the jobs it runs. A queue object that only submits (a
    /// server whose workers are elsewhere) is not woken by every submit.
    /// </summary>
    private Task WorkingAsync() => SubscribedAsync(ref _working, async () =>
    {
        ISubscriber subscriber = _redis.GetSubscriber();
        await subscriber.SubscribeAsync(RedisChannel.Literal(_prefix + ":cancel"), (_, message) =>
        {
            if (_leases.TryGetValue((string)message!, out Lease? lease)) lease.Cancel();
        }).ConfigureAwait(false);
        await subscriber.SubscribeAsync(RedisChannel.Literal(_prefix + ":wake:" + _consumer), (_, _) => WakeUp()).ConfigureAwait(false);
    });

    private Task SubscribedAsync(ref Task? slot, Func<Task> subscribe)
    {
        Task? done = Volatile.Read(ref slot);
        if (done is { IsCompletedSuccessfully: true }) return done;
        lock (_gate)
        {
            // A subscription that failed (Redis unreachable) is tried again by the next caller that needs it.
            if (slot is null || slot.IsFaulted || slot.IsCanceled) slot = subscribe();
            return slot;
        }
    }

    /// <inheritdoc/>
    public string Name => _options.Name;

    /// <inheritdoc/>
    public bool IsDurable => true;

    /// <summary>The consumer name this queue object reads the stream as.</summary>
    public string Consumer => _consumer;

    /// <inheritdoc/>
    public async ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed == 1, this);
        string id = _idPrefix + Interlocked.Increment(ref _nextId).ToString(CultureInfo.InvariantCulture);
        Watcher? watcher = null;
        if (observer is not null)
        {
            // Watching before the job exists: no event can slip past between the two.
            await ReachingAsync(async () => { await WatchingAsync().ConfigureAwait(false); return true; }, NotQueued, cancellationToken).ConfigureAwait(false);
            observer.OnAccepted(id);
            watcher = AddWatcher(id, observer, 0);
            watcher.Pending = true; // until the job exists, its absence does not mean it was forgotten
        }

        try
        {
            RedisValue[] values = [_prefix, id, request.Function, JobCodec.EncodeRequest(request), request.Arguments.ToArray(), request.CreatedAt.ToUnixTimeMilliseconds(),
                request.Deadline?.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) ?? "", request.Detached ? 1 : 0, request.Caller?.Name ?? ""];
            long start = Environment.TickCount64;
            bool mayHaveBeenQueued = false;
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    // The script queues the job once: made again after an answer was lost, it finds the job and adds nothing.
                    await _db.ScriptEvaluateAsync(RedisScripts.Submit, null, values).ConfigureAwait(false);
                    break;
                }
                catch (Exception e) when (OutOfReach(e))
                {
                    mayHaveBeenQueued |= MayHaveReached(e);
                    if (watcher?.HasHeard == true) break; // it was queued: its events are arriving
                    if (!TryAgain(e, start, attempt, cancellationToken, out TimeSpan wait))
                    {
                        throw Unavailable(e, start, mayHaveBeenQueued
                            ? $"the connection broke after the request was sent, so the call may have been queued as job {id} (it then runs when Redis is back): look it up before calling again"
                            : NotQueued, id, mayHaveBeenQueued);
                    }

                    await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch
        {
            watcher?.Dispose();
            throw;
        }

        if (watcher is not null) watcher.Pending = false; // its events come by notice, and by the next look if one is lost

        WakeUp(); // this process's own workers need no pub/sub round trip
        return new JobTicket(id, watcher);
    }

    /// <inheritdoc/>
    public async ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default)
    {
        bool known = await ReachingAsync(async () =>
        {
            if (!await _db.KeyExistsAsync(JobKey(jobId)).ConfigureAwait(false)) return false;
            await WatchingAsync().ConfigureAwait(false);
            return true;
        }, $"job {jobId} could not be looked up", cancellationToken).ConfigureAwait(false);
        if (!known) return null;
        observer.OnAccepted(jobId);
        Watcher watcher = AddWatcher(jobId, observer, afterSequence);
        watcher.Poke();
        return watcher;
    }

    /// <inheritdoc/>
    public async ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default)
        => await ReachingAsync(() => GetOnceAsync(jobId, withOutput), $"job {jobId} could not be looked up", cancellationToken).ConfigureAwait(false);

    private async Task<JobInfo?> GetOnceAsync(string jobId, bool withOutput)
    {
        RedisValue[] fields = await _db.HashGetAsync(JobKey(jobId), InfoFields).ConfigureAwait(false);
        if (fields[0].IsNull) return null;
        JobInfo info = ReadInfo(jobId, fields);
        if (withOutput)
        {
            IReadOnlyList<JobEvent> events = await ReadEventsAsync(jobId, 0).ConfigureAwait(false);
            info = info with { Output = [.. events.Where(e => e.Kind == JobEventKind.Output && JobData.IsConsole(e.Stream)).Select(e => new OutputChunk(e.Stream, e.Text ?? ""))] };
        }

        return info;
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default)
        => await ReachingAsync(() => ListOnceAsync(query ?? new JobQuery()), "its jobs could not be listed", cancellationToken).ConfigureAwait(false);

    private async Task<IReadOnlyList<JobInfo>> ListOnceAsync(JobQuery query)
    {
        var jobs = new List<JobInfo>();
        const int Page = 256;
        for (long start = 0; jobs.Count < query.Limit; start += Page)
        {
            RedisValue[] ids = await _db.SortedSetRangeByRankAsync(_prefix + ":jobs", start, start + Page - 1, Order.Descending).ConfigureAwait(false);
            if (ids.Length == 0) break;
            Task<RedisValue[]>[] reads = [.. ids.Select(id => _db.HashGetAsync(JobKey((string)id!), InfoFields))];
            for (int i = 0; i < ids.Length && jobs.Count < query.Limit; i++)
            {
                RedisValue[] fields = await reads[i].ConfigureAwait(false);
                if (fields[0].IsNull) continue; // forgotten meanwhile
                JobInfo info = ReadInfo((string)ids[i]!, fields);
                if (query.Matches(info.State, info.Function)) jobs.Add(info);
            }
        }

        return jobs;
    }

    /// <inheritdoc/>
    public async ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default)
    {
        RedisValue function = await ReachingAsync(() => _db.HashGetAsync(JobKey(jobId), "function"), $"job {jobId} was not cancelled", cancellationToken).ConfigureAwait(false);
        if (function.IsNull) return false;
        JobOutcome cancelled = JobOutcome.CancelledBy(new JobRequest { Id = jobId, Function = (string)function! }, whileQueued: true);
        long result;
        for (long start = Environment.TickCount64, attempt = 1; ; attempt++)
        {
            try
            {
                result = (long)await EvalAsync(RedisScripts.Cancel, jobId, Now(), JobCodec.EncodeOutcome(cancelled)).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (OutOfReach(e))
            {
                // Made again only while it certainly did not reach Redis: one whose answer was lost would, made again,
                // say it found the job already ended.
                if (MayHaveReached(e)) throw Unavailable(e, start, $"the cancel of job {jobId} was sent but not answered: look the job up once Redis is back");
                if (!TryAgain(e, start, (int)attempt, cancellationToken, out TimeSpan wait)) throw Unavailable(e, start, $"job {jobId} was not cancelled");
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
        }

        if (result == 1 && _leases.TryGetValue(jobId, out Lease? local)) local.Cancel();
        return result == 1;
    }

    /// <inheritdoc/>
    public async ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default)
        => await ReachingAsync(() => EvalAsync(RedisScripts.Release, jobId), $"job {jobId} was not released", cancellationToken).ConfigureAwait(false);

    /// <inheritdoc/>
    public async ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        if (_disposed == 1 || cancellationToken.IsCancellationRequested) return null; // a worker that stopped taking takes nothing
        try
        {
            await WorkingAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return null;
        }

        var taker = new Taker(this, workerId, leaseDuration == Timeout.InfiniteTimeSpan ? TimeSpan.FromDays(3650) : leaseDuration);
        // Registered before the taker waits, so that once the stop's Cancel returns the taker is out of the list and
        // takes nothing handed back after the stop (see SqliteJobQueue.TakeAsync). A job already fetched for it, the
        // round trip on its way, goes back as never taken (FetchLoopAsync).
        using CancellationTokenRegistration registration = cancellationToken.Register(static s =>
        {
            var t = (Taker)s!;
            lock (t.Queue._gate)
            {
                if (t.Node?.List is not null) t.Queue._takers.Remove(t.Node);
            }

            t.Result.TrySetResult(null);
        }, taker);
        lock (_gate)
        {
            if (_disposed == 1 || cancellationToken.IsCancellationRequested) return null; // a worker that stopped taking takes nothing
            taker.Node = _takers.AddLast(taker);
        }

        // While this consumer is idle (its last take found the queue empty), a submit wakes it: one more taker
        // need not ask Redis again for what is not there.
        if (!_idle) Wake();
        return await taker.Result.Task.ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- workers' side

    /// <summary>Work may have come: the next take asks Redis even for a taker that arrives while it is idle.</summary>
    private void WakeUp()
    {
        _idle = false;
        Wake();
    }

    private void Wake()
    {
        if (_wake.CurrentCount == 0) _wake.Release();
    }

    private async Task FetchLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(_options.PollInterval, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            try
            {
                while (true)
                {
                    Taker[] waiting;
                    lock (_gate) waiting = [.. _takers.Take(64)];
                    if (waiting.Length == 0) break;
                    (List<Lease> leases, int fetched) = await TryTakeAsync(waiting[0], waiting.Length).ConfigureAwait(false);
                    foreach (Lease lease in leases)
                    {
                        Taker? taker;
                        lock (_gate)
                        {
                            taker = _takers.First?.Value;
                            if (taker is not null)
                            {
                                _takers.RemoveFirst();
                                taker.Node = null;
                            }
                        }

                        if (taker is null || !taker.Result.TrySetResult(lease))
                        {
                            // The taker stopped waiting during the round trip: the job goes back as never taken, so
                            // the worker that runs it counts the attempt the queue promised it.
                            await HandBackAsync(lease, untake: true).ConfigureAwait(false);
                        }
                    }

                    // Fewer than asked for: the queue is empty (the take recorded this consumer as idle, and the next
                    // submit wakes it); asking again now would only find nothing. A wake-up that overtook this answer
                    // has released _wake, so the loop takes once more whatever _idle says.
                    if (fetched < waiting.Length)
                    {
                        _idle = true;
                        break;
                    }

                    _idle = false;
                }
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Redis is unreachable for now (a restart): the next round tries again.
            }
        }
    }

    /// <summary>Leases up to <paramref name="count"/> jobs in one round trip (they go to the waiting takers in order).</summary>
    private async Task<(List<Lease> Leases, int Fetched)> TryTakeAsync(Taker taker, int count)
    {
        long leaseMs = (long)Math.Min(taker.Duration.TotalMilliseconds, TimeSpan.FromDays(3650).TotalMilliseconds);
        RedisResult result = await EvalAsync(RedisScripts.Take, _consumer, leaseMs, Now(), taker.WorkerId, 0, count).ConfigureAwait(false);
        var leases = new List<Lease>();
        var items = (RedisResult[])result!;
        foreach (RedisResult item in items)
        {
            var fields = (RedisResult[])item!;
            string id = (string)fields[0]!;
            int attempt = (int)fields[1];
            JobRequest request = JobCodec.DecodeRequest(id, (byte[])fields[2]!, (byte[])fields[3]!);
            if (fields.Length > 5)
            {
                // Lapsed after its cancel was asked for: its caller was told it is cancelled, so it does not run again.
                await FinishAsync(id, JobState.Running, attempt, JobOutcome.CancelledBy(request, whileQueued: false)).ConfigureAwait(false);
                continue;
            }

            var lease = new Lease(this, request, attempt, taker.Duration, (string)fields[4]!);
            if (request.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
            {
                await FinishAsync(id, JobState.Running, attempt, JobOutcome.DeadlinePassed(request, whileQueued: true)).ConfigureAwait(false);
                continue;
            }

            _leases[id] = lease;
            leases.Add(lease);
        }

        return (leases, items.Length);
    }

    private async Task<bool> RenewAsync(Lease lease)
    {
        long flag = (long)await EvalAsync(RedisScripts.Renew, lease.Request.Id, lease.Attempt, _consumer, lease.Entry, Now() + (long)lease.Duration.TotalMilliseconds).ConfigureAwait(false);
        if (flag < 0)
        {
            Lost(lease);
            return false;
        }

        if (flag == 1) lease.Cancel();
        return true;
    }

    private async Task<bool> CompleteAsync(Lease lease, JobOutcome outcome)
    {
        await FlushAsync(lease).ConfigureAwait(false);
        bool done = await FinishAsync(lease.Request.Id, JobState.Running, lease.Attempt, outcome).ConfigureAwait(false);
        _leases.TryRemove(new KeyValuePair<string, Lease>(lease.Request.Id, lease));
        return done;
    }

    private async Task AbandonAsync(Lease lease)
    {
        await FlushAsync(lease).ConfigureAwait(false);
        await HandBackAsync(lease, untake: false).ConfigureAwait(false);
    }

    private async Task HandBackAsync(Lease lease, bool untake)
    {
        JobOutcome cancelled = JobOutcome.CancelledBy(lease.Request, whileQueued: false);
        long n = (long)await EvalAsync(RedisScripts.HandBack, lease.Request.Id, lease.Attempt, Now(), JobCodec.EncodeOutcome(cancelled), untake ? "1" : "0").ConfigureAwait(false);
        _leases.TryRemove(new KeyValuePair<string, Lease>(lease.Request.Id, lease));
        if (n > 0) Notify(lease.Request.Id, new JobEvent(n, JobEventKind.Completed, Outcome: cancelled)); // its cancel was asked for meanwhile
        else WakeUp();
    }

    private void Lost(Lease lease)
    {
        _leases.TryRemove(new KeyValuePair<string, Lease>(lease.Request.Id, lease));
        lease.Cancel();
    }

    private async Task<bool> FinishAsync(string id, JobState from, int? attempt, JobOutcome outcome)
    {
        byte[] result = outcome.Error is null ? outcome.Result.ToArray() : [];
        long n = (long)await EvalAsync(RedisScripts.Finish, id, ((int)from).ToString(CultureInfo.InvariantCulture), attempt?.ToString(CultureInfo.InvariantCulture) ?? "",
            (int)outcome.State, Now(), JobCodec.EncodeOutcome(outcome.WithoutResult()), result, _options.InlineResultBytes).ConfigureAwait(false);
        if (n < 0) return false;
        Notify(id, new JobEvent(n, JobEventKind.Completed, Outcome: outcome)); // this process's watchers need no round trip
        return true;
    }

    private async Task FlushLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await _flush.WaitAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            foreach (Lease lease in _leases.Values)
            {
                try
                {
                    await FlushAsync(lease).ConfigureAwait(false);
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    _flush.Release(); // try again once Redis is back
                    await Task.Delay(100).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Writes a lease's buffered output, in order: one script per batch.</summary>
    private async Task FlushAsync(Lease lease)
    {
        await lease.Writing.WaitAsync().ConfigureAwait(false);
        try
        {
            List<OutputChunk>? chunks = lease.TakePending();
            if (chunks is null) return;
            var args = new List<RedisValue>(4 + chunks.Count * 2) { _prefix, lease.Request.Id, lease.Attempt, _options.Retention.MaxOutputBytesPerJob };
            foreach (OutputChunk c in chunks)
            {
                args.Add((int)c.Stream);
                args.Add(c.Text);
            }

            long last;
            try
            {
                last = (long)await _db.ScriptEvaluateAsync(RedisScripts.Output, null, [.. args]).ConfigureAwait(false);
            }
            catch
            {
                lease.Restore(chunks); // written again on the next flush
                throw;
            }

            if (last < 0)
            {
                Lost(lease);
                return;
            }

            long n = last - chunks.Count;
            foreach (OutputChunk c in chunks) Notify(lease.Request.Id, new JobEvent(++n, JobEventKind.Output, c.Stream, c.Text));
        }
        finally
        {
            lease.Writing.Release();
        }
    }

    // ---------------------------------------------------------------- watchers

    private Watcher AddWatcher(string jobId, IJobObserver observer, long after)
    {
        var watcher = new Watcher(this, jobId, observer, after);
        lock (_gate) (_watchers.TryGetValue(jobId, out List<Watcher>? list) ? list : _watchers[jobId] = []).Add(watcher);
        return watcher;
    }

    private void RemoveWatcher(Watcher watcher)
    {
        lock (_gate)
        {
            if (_watchers.TryGetValue(watcher.JobId, out List<Watcher>? list))
            {
                list.Remove(watcher);
                if (list.Count == 0) _watchers.Remove(watcher.JobId);
            }
        }
    }

    private void Notify(string jobId, JobEvent e)
    {
        Watcher[] watchers;
        lock (_gate)
        {
            if (!_watchers.TryGetValue(jobId, out List<Watcher>? list)) return;
            watchers = [.. list];
        }

        foreach (Watcher w in watchers) w.Notify(e);
    }

    /// <summary>A pub/sub notice of an event: {id, n, kind, stream, text, attempt, inline, outcome, result}.</summary>
    private void OnEventNotice(RedisValue message)
    {
        try
        {
            var r = new MessagePackReader((byte[])message!);
            if (r.ReadArrayHeader() != 9) return;
            string id = r.ReadString() ?? "";
            long n = r.ReadInt64();
            var kind = (JobEventKind)r.ReadInt32();
            var stream = (OutputStream)r.ReadInt32();
            string text = r.ReadString() ?? "";
            int attempt = r.ReadInt32();
            bool inline = r.ReadInt32() == 1;
            byte[] outcome = r.ReadStringSpan().ToArray();
            byte[] result = r.ReadStringSpan().ToArray();
            lock (_gate)
            {
                if (!_watchers.ContainsKey(id)) return;
            }

            JobEvent e = kind == JobEventKind.Completed
                ? new JobEvent(n, kind, Outcome: inline ? JobCodec.DecodeOutcome(outcome) with { Result = result } : null)
                : new JobEvent(n, kind, stream, kind == JobEventKind.Output ? text : null, Attempt: attempt);
            Notify(id, e);
        }
        catch (Exception ex) when (ex is Formatting.IpyRpcSerializationException or InvalidCastException)
        {
            // Not one of ours; watchers catch up by reading the job's events.
        }
    }

    private async Task<IReadOnlyList<JobEvent>> ReadEventsAsync(string jobId, long after)
    {
        RedisResult raw = await _db.ExecuteAsync("XRANGE", EventsKey(jobId), "(" + after.ToString(CultureInfo.InvariantCulture) + "-0", "+").ConfigureAwait(false);
        var events = new List<JobEvent>();
        foreach (RedisResult entry in (RedisResult[])raw!)
        {
            var parts = (RedisResult[])entry!;
            string entryId = (string)parts[0]!;
            long n = long.Parse(entryId.AsSpan(0, entryId.IndexOf('-')), CultureInfo.InvariantCulture);
            var fields = (RedisResult[])parts[1]!;
            int kind = 0, stream = 0, attempt = 0;
            string? text = null;
            for (int i = 0; i + 1 < fields.Length; i += 2)
            {
                switch ((string)fields[i]!)
                {
                    case "k": kind = (int)fields[i + 1]; break;
                    case "s": stream = (int)fields[i + 1]; break;
                    case "t": text = (string?)fields[i + 1]; break;
                    case "a": attempt = (int)fields[i + 1]; break;
                }
            }

            events.Add(new JobEvent(n, (JobEventKind)kind, (OutputStream)stream, (JobEventKind)kind == JobEventKind.Output ? text : null, Attempt: attempt));
        }

        return events;
    }

    private async Task<JobOutcome> LoadOutcomeAsync(string jobId)
    {
        RedisValue[] f = await _db.HashGetAsync(JobKey(jobId), ["outcome", "result", "released", "function"]).ConfigureAwait(false);
        if (f[0].IsNull)
        {
            return JobOutcome.Failure(JobState.Failed, new RemoteError { Code = Protocol.ErrorCodes.NotFound, Message = $"Job {jobId} was forgotten (retention) before its outcome could be read." });
        }

        JobOutcome outcome = JobCodec.DecodeOutcome((byte[])f[0]!);
        if (outcome.Error is null && (string?)f[2] == "1")
        {
            return JobOutcome.Released(new JobRequest { Id = jobId, Function = (string)f[3]! });
        }

        return outcome with { Result = (byte[]?)f[1] ?? [] };
    }

    private JobInfo ReadInfo(string id, RedisValue[] f)
    {
        var state = (JobState)(int)f[1];
        return new JobInfo
        {
            Id = id,
            Function = (string)f[0]!,
            Queue = Name,
            State = state,
            CreatedAt = Time(f[2]) ?? default,
            StartedAt = Time(f[3]),
            CompletedAt = Time(f[4]),
            Deadline = Time(f[5]),
            Attempts = f[6].IsNull ? 0 : (int)f[6],
            Worker = (string?)f[7],
            Detached = (string?)f[8] == "1",
            LastSequence = f[9].IsNull ? 0 : (long)f[9],
            Outcome = f[10].IsNull ? null : JobCodec.DecodeOutcome((byte[])f[10]!),
            ResultReleased = (string?)f[11] == "1",
            RetainedBytes = f[12].IsNull ? 0 : (long)f[12],
            Owner = (string?)f[13] is { Length: > 0 } owner ? owner : null,
        };
    }

    // ---------------------------------------------------------------- upkeep

    private async Task MaintenanceLoopAsync()
    {
        DateTime nextTrim = DateTime.UtcNow, nextPoke = DateTime.UtcNow, nextSweep = DateTime.UtcNow, nextKey = DateTime.UtcNow;
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _stopping.Token).ConfigureAwait(false);
                DateTime now = DateTime.UtcNow;

                // Queued jobs past their deadline end timed out without running.
                RedisValue[] expired = await _db.SortedSetRangeByScoreAsync(_prefix + ":deadlines", double.NegativeInfinity, Now(), take: 100).ConfigureAwait(false);
                foreach (RedisValue id in expired)
                {
                    RedisValue function = await _db.HashGetAsync(JobKey((string)id!), "function").ConfigureAwait(false);
                    await FinishAsync((string)id!, JobState.Queued, null, JobOutcome.DeadlinePassed(new JobRequest { Id = (string)id!, Function = (string?)function ?? "?" }, whileQueued: true)).ConfigureAwait(false);
                    await _db.SortedSetRemoveAsync(_prefix + ":deadlines", id).ConfigureAwait(false);
                }

                if (now >= nextTrim)
                {
                    long cutoff = Now() - (long)Math.Min(_options.Retention.MaxAge.TotalMilliseconds, long.MaxValue / 4);
                    await EvalAsync(RedisScripts.Trim, cutoff, _options.Retention.MaxBytes).ConfigureAwait(false);
                    nextTrim = now + TimeSpan.FromMilliseconds(Math.Clamp(_options.Retention.MaxAge.TotalMilliseconds / 4, 50, 1000));
                }

                if (now >= nextKey)
                {
                    // A Redis that lost the pointer key (restarted without persistence, or evicting under maxmemory) gets it
                    // back from the processes that have it, before a process opening a queue there makes another.
                    await _db.StringSetAsync(PointerKeyName, PointerKey.ToArray(), when: When.NotExists).ConfigureAwait(false);
                    nextKey = now + TimeSpan.FromSeconds(1);
                }

                if (now >= nextSweep)
                {
                    await EvalAsync(RedisScripts.SweepOrphans, _consumer, (long)OrphanIdle.TotalMilliseconds).ConfigureAwait(false);
                    nextSweep = now + TimeSpan.FromSeconds(10);
                }

                if (now >= nextPoke)
                {
                    // A notice lost while Redis restarted must not leave a watcher waiting forever.
                    Watcher[] all;
                    lock (_gate) all = [.. _watchers.Values.SelectMany(l => l)];
                    foreach (Watcher w in all) w.Poke();
                    nextPoke = now + _options.PollInterval * 4;
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // Redis is unreachable for now: try again next round.
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private string JobKey(string id) => _prefix + ":job:" + id;

    private string EventsKey(string id) => _prefix + ":ev:" + id;

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static DateTimeOffset? Time(RedisValue v) => v.IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)v);

    /// <summary>
    /// Runs a request that may be made again (a read, or a change that is the same made twice), trying again while Redis
    /// is out of reach, for up to <see cref="RedisJobQueueOptions.ReconnectTimeout"/>; past it, <see cref="JobQueueUnavailableException"/>
    /// saying <paramref name="consequence"/>.
    /// </summary>
    private async Task<T> ReachingAsync<T>(Func<Task<T>> request, string consequence, CancellationToken cancellationToken)
    {
        long start = Environment.TickCount64;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await request().ConfigureAwait(false);
            }
            catch (Exception e) when (OutOfReach(e))
            {
                if (!TryAgain(e, start, attempt, cancellationToken, out TimeSpan wait)) throw Unavailable(e, start, consequence);
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Whether to try a request again after it found Redis out of reach, and after how long (50 ms, doubling to 1 s).
    /// Credentials Redis refused are not tried again: they will not change by waiting.
    /// </summary>
    private bool TryAgain(Exception e, long start, int attempt, CancellationToken cancellationToken, out TimeSpan wait)
    {
        wait = TimeSpan.FromMilliseconds(Math.Min(1000, 50 << Math.Min(attempt - 1, 5)));
        if (e is RedisConnectionException { FailureType: ConnectionFailureType.AuthenticationFailure }) return false;
        long left = (long)_options.ReconnectTimeout.TotalMilliseconds - (Environment.TickCount64 - start);
        return left > 0 && _disposed == 0 && !cancellationToken.IsCancellationRequested;
    }

    /// <summary>
    /// Whether <paramref name="e"/> says Redis is out of reach for now (down, restarting, loading its data after a
    /// restart, a broken connection, a replica not yet promoted) rather than that the request was wrong.
    /// </summary>
    private static bool OutOfReach(Exception e) => e is RedisConnectionException or RedisTimeoutException
        || (e is RedisServerException server && (server.Message.StartsWith("LOADING", StringComparison.Ordinal) || server.Message.StartsWith("BUSY", StringComparison.Ordinal)
            || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal) || server.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
            || server.Message.StartsWith("READONLY", StringComparison.Ordinal)));

    /// <summary>Whether the request that failed with <paramref name="e"/> may have reached Redis and run there (sent, its answer lost).</summary>
    private static bool MayHaveReached(Exception e) => e switch
    {
        RedisConnectionException c => c.CommandStatus is CommandStatus.Sent or CommandStatus.Unknown,
        RedisTimeoutException t => t.Commandstatus is CommandStatus.Sent or CommandStatus.Unknown,
        _ => false, // Redis answered, with an error: it ran nothing
    };

    /// <summary>The failure a caller is told of: why Redis is out of reach and what that did to the request, without Redis' address or its client's state.</summary>
    private JobQueueUnavailableException Unavailable(Exception e, long start, string consequence, string? jobId = null, bool mayHaveBeenQueued = false)
    {
        string why = e switch
        {
            RedisConnectionException { FailureType: ConnectionFailureType.AuthenticationFailure } => "it refused the password or user of the queue's configuration",
            RedisConnectionException c => $"no connection ({c.FailureType})",
            RedisTimeoutException => "no connection within the timeout",
            _ => "Redis answered " + e.Message.Split(' ', 2)[0],
        };
        double seconds = (Environment.TickCount64 - start) / 1000.0;
        string waited = seconds >= 0.1 ? string.Create(CultureInfo.InvariantCulture, $", after trying for {seconds:0.#} s") : "";
        return new JobQueueUnavailableException(Name, $"The job queue \"{Name}\" cannot reach Redis ({why}{waited}): {consequence}.", e, jobId, mayHaveBeenQueued);
    }

    private Task<RedisResult> EvalAsync(string script, params RedisValue[] args)
    {
        var values = new RedisValue[args.Length + 1];
        values[0] = _prefix;
        args.CopyTo(values, 1);
        return _db.ScriptEvaluateAsync(script, null, values);
    }

    /// <summary>Stops taking jobs and closes the connection (when this queue opened it). Leases still held lapse and go to other workers.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        Taker[] takers;
        Watcher[] watchers;
        lock (_gate)
        {
            takers = [.. _takers];
            _takers.Clear();
            watchers = [.. _watchers.Values.SelectMany(l => l)];
            _watchers.Clear();
        }

        foreach (Taker t in takers) t.Result.TrySetResult(null);
        foreach (Watcher w in watchers) w.Stop();
        foreach (Lease lease in _leases.Values)
        {
            try
            {
                await FlushAsync(lease).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
            }
        }

        _stopping.Cancel();
        await Task.WhenAll(_loops).ConfigureAwait(false);
        // With Redis out of reach each goodbye would wait out its timeout; what they tidy is tidied without them (the
        // subscriptions end with the connection, and a consumer that is gone is passed over when waking).
        if (_redis.IsConnected)
        {
            ISubscriber subscriber = _redis.GetSubscriber();
            try
            {
                if (_watching is not null) await subscriber.UnsubscribeAsync(RedisChannel.Literal(_prefix + ":events")).ConfigureAwait(false);
                if (_working is not null)
                {
                    await subscriber.UnsubscribeAsync(RedisChannel.Literal(_prefix + ":cancel")).ConfigureAwait(false);
                    await subscriber.UnsubscribeAsync(RedisChannel.Literal(_prefix + ":wake:" + _consumer)).ConfigureAwait(false);
                    await _db.SortedSetRemoveAsync(_prefix + ":idle", _consumer).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
            }
        }

        foreach (Lease lease in _leases.Values) lease.Cancel();
        _redis.ConnectionFailed -= OnConnectionFailed;
        _redis.ConnectionRestored -= OnConnectionRestored;
        if (_ownsConnection)
        {
            await _redis.CloseAsync().ConfigureAwait(false);
            _redis.Dispose();
        }

        _stopping.Dispose();
    }

    private sealed class Taker(RedisJobQueue queue, string workerId, TimeSpan duration)
    {
        public RedisJobQueue Queue => queue;

        public string WorkerId => workerId;

        public TimeSpan Duration => duration;

        public LinkedListNode<Taker>? Node { get; set; }

        public TaskCompletionSource<JobLease?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// One observer of one job. Events arrive by notice; one that follows the last delivered goes
    /// straight on, anything else (a gap, a completion without its outcome) makes the watcher read
    /// the job's event stream from where it is. One delivery at a time, in order.
    /// </summary>
    private sealed class Watcher(RedisJobQueue queue, string jobId, IJobObserver observer, long after) : IDisposable
    {
        private readonly object _gate = new();
        private long _last = after;

        /// <summary>The job is being submitted: until it is, finding it absent says nothing.</summary>
        public volatile bool Pending;
        private bool _pumping;
        private bool _again;
        private bool _done;

        public string JobId => jobId;

        /// <summary>For a watcher made at the job's submit (from event 0): whether an event of the job has been delivered, so it exists.</summary>
        public bool HasHeard
        {
            get
            {
                lock (_gate) return _last > 0;
            }
        }

        public void Notify(JobEvent e)
        {
            lock (_gate)
            {
                if (_done || e.Sequence <= _last) return;
                if (!_pumping && e.Sequence == _last + 1 && (e.Kind != JobEventKind.Completed || e.Outcome is not null))
                {
                    Deliver(e);
                    return;
                }

                if (_pumping)
                {
                    _again = true;
                    return;
                }

                _pumping = true;
            }

            _ = PumpAsync();
        }

        /// <summary>Reads the job's events past the last delivered one.</summary>
        public void Poke()
        {
            lock (_gate)
            {
                if (_done) return;
                if (_pumping)
                {
                    _again = true;
                    return;
                }

                _pumping = true;
            }

            _ = PumpAsync();
        }

        private async Task PumpAsync()
        {
            while (true)
            {
                try
                {
                    long from;
                    lock (_gate) from = _last;
                    IReadOnlyList<JobEvent> events = await queue.ReadEventsAsync(jobId, from).ConfigureAwait(false);
                    foreach (JobEvent e in events)
                    {
                        JobEvent ready = e.Kind == JobEventKind.Completed ? e with { Outcome = await queue.LoadOutcomeAsync(jobId).ConfigureAwait(false) } : e;
                        lock (_gate)
                        {
                            if (_done) return;
                            if (ready.Sequence > _last) Deliver(ready);
                        }
                    }

                    // No events and no job: forgotten, unless the job is still on its way in (a look taken between the
                    // watcher's start and the submit, by the maintenance loop's periodic poke).
                    if (events.Count == 0 && !Pending && !await queue._db.KeyExistsAsync(queue.JobKey(jobId)).ConfigureAwait(false))
                    {
                        lock (_gate)
                        {
                            if (!_done) Deliver(new JobEvent(_last + 1, JobEventKind.Completed, Outcome: JobOutcome.Failure(JobState.Failed, new RemoteError
                            {
                                Code = Protocol.ErrorCodes.NotFound,
                                Message = $"Job {jobId} was forgotten (retention) before its outcome could be read.",
                            })));
                        }
                    }
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    // Redis is unreachable for now: the maintenance loop pokes again.
                }

                lock (_gate)
                {
                    if (!_again || _done)
                    {
                        _pumping = false;
                        return;
                    }

                    _again = false;
                }
            }
        }

        private void Deliver(in JobEvent e)
        {
            _last = e.Sequence;
            if (e.Kind == JobEventKind.Completed)
            {
                _done = true;
                queue.RemoveWatcher(this);
            }

            observer.OnEvent(e);
        }

        public void Stop()
        {
            lock (_gate) _done = true;
        }

        public void Dispose()
        {
            Stop();
            queue.RemoveWatcher(this);
        }
    }

    private sealed class Lease : JobLease
    {
        private readonly RedisJobQueue _queue;
        private readonly CancellationTokenSource _cancel;
        private List<OutputChunk>? _pending;

        public Lease(RedisJobQueue queue, JobRequest request, int attempt, TimeSpan duration, string entry)
            : this(queue, request, attempt, duration, entry, new CancellationTokenSource())
        {
        }

        private Lease(RedisJobQueue queue, JobRequest request, int attempt, TimeSpan duration, string entry, CancellationTokenSource cancel)
            : base(request, attempt, cancel.Token)
        {
            _queue = queue;
            _cancel = cancel;
            Duration = duration;
            Entry = entry;
        }

        public TimeSpan Duration { get; }

        public string Entry { get; }

        public SemaphoreSlim Writing { get; } = new(1, 1);

        public override TimeSpan? RenewEvery => Duration / 3;

        public override void Write(OutputStream stream, string text)
        {
            lock (this) (_pending ??= []).Add(new OutputChunk(stream, text));
            if (_queue._flush.CurrentCount == 0) _queue._flush.Release();
        }

        public List<OutputChunk>? TakePending()
        {
            lock (this)
            {
                List<OutputChunk>? taken = _pending;
                _pending = null;
                return taken;
            }
        }

        public void Restore(List<OutputChunk> chunks)
        {
            lock (this)
            {
                if (_pending is not null) chunks.AddRange(_pending);
                _pending = chunks;
            }
        }

        public void Cancel()
        {
            try
            {
                _cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public override async ValueTask<bool> RenewAsync(CancellationToken cancellationToken = default) => await _queue.RenewAsync(this).ConfigureAwait(false);

        public override async ValueTask<bool> CompleteAsync(JobOutcome outcome, CancellationToken cancellationToken = default) => await _queue.CompleteAsync(this, outcome).ConfigureAwait(false);

        public override async ValueTask AbandonAsync(CancellationToken cancellationToken = default) => await _queue.AbandonAsync(this).ConfigureAwait(false);
    }
}
