using System.Collections.Concurrent;
using System.Text;
using Microsoft.Data.Sqlite;

namespace IpyRpc.Jobs;

/// <summary>Options of the <see cref="SqliteJobQueue"/>.</summary>
public sealed record SqliteJobQueueOptions
{
    /// <summary>The queue's name. Several queues can share one file; each sees only its own jobs.</summary>
    public string Name { get; init; } = "sqlite";

    /// <summary>How long finished jobs are remembered and how many bytes of theirs are kept.</summary>
    public JobRetention Retention { get; init; } = new();

    /// <summary>
    /// How often the file is checked for what other processes wrote (new jobs, output, outcomes,
    /// cancels), besides the checks the file's change notices bring (<see cref="WatchFile"/>). The check
    /// is one <c>PRAGMA data_version</c>, which costs no disk I/O. Writes from this queue object itself
    /// are seen at once.
    /// </summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>
    /// Whether a write to the file by another process wakes this queue object at once (the file system's change notices:
    /// inotify on Linux), so a worker elsewhere takes a new job, and a server hears of a job's output and outcome, within a
    /// fraction of a millisecond rather than at the next <see cref="PollInterval"/>. On by default. A queue object whose
    /// own workers take the calls it submits (a server that runs its own calls) stops watching once they do: nearly every
    /// notice it would get is one of its own commits, and each costs a thread's wake-up; it hears of other processes'
    /// writes at its poll. The poll goes on either way: it covers file systems that give no notices (network shares), and
    /// a process whose notices cannot be had (the system's limit on inotify instances reached) polls only.
    /// </summary>
    public bool WatchFile { get; init; } = true;

    /// <summary>
    /// Whether every commit waits for the disk (<c>synchronous=FULL</c>). Off by default
    /// (<c>NORMAL</c> in WAL mode): a crashed process loses nothing; a power cut may lose the last commits.
    /// </summary>
    public bool FullSync { get; init; }

    /// <summary>
    /// How long a write waits for another process holding the file's write lock. Past it, what a server asks of the
    /// queue for a caller fails with <see cref="JobQueueUnavailableException"/> (the caller's <c>unavailable</c>), having
    /// changed nothing.
    /// </summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// A durable queue in one SQLite file (the seeds' "shelve"): jobs, their recorded output and
/// their outcomes survive a restart, and workers in other processes on the same machine take jobs
/// from the same file. WAL mode; every state change is one short transaction.
/// </summary>
/// <remarks>
/// Processes see each other's writes by checking <c>PRAGMA data_version</c> when the file's change
/// notices say it was written (<see cref="SqliteJobQueueOptions.WatchFile"/>) and every
/// <see cref="SqliteJobQueueOptions.PollInterval"/>, and reading new events by a file-wide sequence
/// number; a queue object's own writes reach its own watchers and workers at once.
/// </remarks>
public sealed class SqliteJobQueue : IJobQueue
{
    private const int RecordOverheadBytes = 256;
    private const int KindStarted = (int)JobEventKind.Started, KindOutput = (int)JobEventKind.Output, KindCompleted = (int)JobEventKind.Completed;
    private const int Queued = (int)JobState.Queued, Running = (int)JobState.Running, FirstFinished = (int)JobState.Succeeded;

    private const string Schema = """
        CREATE TABLE IF NOT EXISTS ipyrpc_jobs (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            queue TEXT NOT NULL,
            function TEXT NOT NULL,
            state INTEGER NOT NULL,
            request BLOB NOT NULL,
            args BLOB,
            created INTEGER NOT NULL,
            started INTEGER,
            completed INTEGER,
            deadline INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            worker TEXT,
            lease_until INTEGER,
            cancel INTEGER NOT NULL DEFAULT 0,
            detached INTEGER NOT NULL,
            owner TEXT,
            last_event INTEGER NOT NULL DEFAULT 0,
            outcome BLOB,
            result BLOB,
            released INTEGER NOT NULL DEFAULT 0,
            output_bytes INTEGER NOT NULL DEFAULT 0,
            retained INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX IF NOT EXISTS ipyrpc_jobs_take ON ipyrpc_jobs (queue, state, seq);
        CREATE INDEX IF NOT EXISTS ipyrpc_jobs_deadline ON ipyrpc_jobs (queue, deadline) WHERE state = 0 AND deadline IS NOT NULL;
        CREATE TABLE IF NOT EXISTS ipyrpc_events (
            gseq INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            n INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            stream INTEGER NOT NULL DEFAULT 0,
            text TEXT,
            attempt INTEGER NOT NULL DEFAULT 0);
        CREATE UNIQUE INDEX IF NOT EXISTS ipyrpc_events_job ON ipyrpc_events (job, n);
        CREATE TABLE IF NOT EXISTS ipyrpc_meta (
            name TEXT PRIMARY KEY,
            value BLOB NOT NULL);
        """;

    private const string JobColumns = "id, function, queue, state, created, started, completed, deadline, attempts, worker, detached, last_event, outcome, released, retained, owner";

    private readonly SqliteJobQueueOptions _options;
    private readonly object _gate = new(); // the connection and all state below
    private readonly SqliteConnection _db;
    private readonly SqliteConnection _checkpoints;
    private readonly Dictionary<string, SqliteStatement> _statements = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<Watcher>> _watchers = new(StringComparer.Ordinal);
    private readonly LinkedList<Taker> _takers = new();
    private readonly ConcurrentDictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _kick = new(0);
    private readonly CancellationTokenSource _stopping = new();
    private readonly string _idPrefix = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.NextInt64())).ToLowerInvariant()[..10] + "-";
    private readonly Task _loop;
    private readonly FileSystemWatcher? _fileWatch;
    private bool _inTransaction;
    private List<(string Job, JobEvent Event)>? _deferred;
    private List<string>? _releases; // delivered results not yet marked released (WriteReleases)
    private long _nextId;
    private bool _runsOwnCalls; // its own workers took a job it submitted: it stops watching the file (WatchWal)
    private long _lastEvent;
    private long _dataVersion;
    private int _kicked;
    private bool _disposed;

    /// <summary>Opens (creating if needed) the queue in the SQLite file at <paramref name="path"/>.</summary>
    public SqliteJobQueue(string path, SqliteJobQueueOptions? options = null)
    {
        _options = options ?? new SqliteJobQueueOptions();
        SQLitePCL.Batteries_V2.Init();
        Path = System.IO.Path.GetFullPath(path);
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Pooling = false,
            DefaultTimeout = (int)Math.Max(1, _options.BusyTimeout.TotalSeconds),
        };
        _db = new SqliteConnection(builder.ToString());
        _db.Open();
        SqliteStatement.Exec(_db.Handle!, $"PRAGMA busy_timeout = {(int)_options.BusyTimeout.TotalMilliseconds};");
        SqliteStatement.Exec(_db.Handle!, "PRAGMA journal_mode = WAL;");
        SqliteStatement.Exec(_db.Handle!, _options.FullSync ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;");
        // Checkpoints (copying the WAL back into the file) happen on a connection of their own in the
        // background loop, not inside whichever commit crosses the threshold.
        SqliteStatement.Exec(_db.Handle!, "PRAGMA wal_autocheckpoint = 0;");
        InTransaction(() => SqliteStatement.Exec(_db.Handle!, Schema));
        PointerKey = InTransaction(() =>
        {
            // The first process to open the file makes the key; every later one reads it.
            Execute("INSERT OR IGNORE INTO ipyrpc_meta (name, value) VALUES ('pointer_key', $key)", ("$key", System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
            using SqliteRows r = Query("SELECT value FROM ipyrpc_meta WHERE name = 'pointer_key'");
            return r.Read() ? r.GetBytes(0) : throw new InvalidOperationException("The queue's pointer key was not kept.");
        });
        _checkpoints = new SqliteConnection(builder.ToString());
        _checkpoints.Open();
        _lastEvent = Scalar<long?>("SELECT max(gseq) FROM ipyrpc_events") ?? 0;
        _dataVersion = Scalar<long>("PRAGMA data_version");
        _fileWatch = _options.WatchFile ? WatchWal() : null;
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The database file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    /// <remarks>Made by the first process to open the file, and kept in it.</remarks>
    public ReadOnlyMemory<byte> PointerKey { get; }

    /// <summary>Whether a write by another process wakes this object at once now (<see cref="SqliteJobQueueOptions.WatchFile"/>).</summary>
    internal bool IsWatchingFile => _fileWatch is { EnableRaisingEvents: true };

    /// <inheritdoc/>
    public string Name => _options.Name;

    /// <inheritdoc/>
    public bool IsDurable => true;

    /// <inheritdoc/>
    public ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default)
        => Locked(() => Submit(request, observer), "the call was not queued and did not run; make it again");

    private ValueTask<JobTicket> Submit(JobRequest request, IJobObserver? observer)
    {
        string id = _idPrefix + Interlocked.Increment(ref _nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Watcher? watcher = null;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // A worker of this object waits and nothing is queued ahead: queue and lease in one transaction.
            Taker? taker = _takers.First?.Value;
            if (taker is not null && Scalar<long?>("SELECT 1 FROM ipyrpc_jobs WHERE queue = $queue AND state = 0 LIMIT 1", ("$queue", Name)) is not null)
            {
                taker = null;
            }

            long now = Now();
            // A call that ends with its caller's connection, taken by this object's own worker, is written when it ends (one
            // commit for the whole call) unless it has output or runs for a while first: nothing elsewhere can know of it before.
            bool unwritten = taker is not null && request.EndsWithCaller;
            _runsOwnCalls |= taker is not null;
            if (!unwritten)
            {
                Insert(id, request, taker is null ? Queued : Running, taker?.WorkerId, taker is null ? null : now + (long)taker.Duration.TotalMilliseconds, taker is null ? null : now);
            }

            if (observer is not null)
            {
                observer.OnAccepted(id);
                watcher = AddWatcher(id, observer, 0);
            }

            if (taker is not null)
            {
                _takers.Remove(taker.Node!);
                taker.Node = null;
                var lease = new Lease(this, request with { Id = id }, 1, taker.Duration) { UnwrittenSince = unwritten ? now : null, WorkerId = taker.WorkerId };
                _leases[id] = lease;
                if (!taker.Result.TrySetResult(lease)) Abandon(lease);
            }

            DispatchTakers();
        }

        return new(new JobTicket(id, watcher));
    }

    /// <inheritdoc/>
    public ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default)
        => Locked(() => Watch(jobId, afterSequence, observer), $"job {jobId} could not be looked up");

    private ValueTask<IDisposable?> Watch(string jobId, long afterSequence, IJobObserver observer)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            WriteBehind(jobId);
            if (Scalar<long?>("SELECT state FROM ipyrpc_jobs WHERE id = $id AND queue = $queue", ("$id", jobId), ("$queue", Name)) is null)
            {
                return new((IDisposable?)null);
            }

            observer.OnAccepted(jobId);
            var watcher = new Watcher(this, jobId, observer, afterSequence);
            Replay(watcher);
            if (!watcher.Done) (_watchers.TryGetValue(jobId, out List<Watcher>? list) ? list : _watchers[jobId] = []).Add(watcher);
            return new(watcher);
        }
    }

    /// <inheritdoc/>
    public ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default)
        => Locked(() => Get(jobId, withOutput), $"job {jobId} could not be looked up");

    private ValueTask<JobInfo?> Get(string jobId, bool withOutput)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            WriteBehind(jobId);
            using SqliteRows r = Query($"SELECT {JobColumns} FROM ipyrpc_jobs WHERE id = $id AND queue = $queue", ("$id", jobId), ("$queue", Name));
            if (!r.Read()) return new((JobInfo?)null);
            JobInfo info = ReadInfo(r);
            r.Close();
            if (withOutput)
            {
                info = info with { Output = ReadOutput(jobId) };
            }

            return new(info);
        }
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default)
        => Locked(() => List(query ?? new JobQuery()), "its jobs could not be listed");

    private ValueTask<IReadOnlyList<JobInfo>> List(JobQuery query)
    {
        var jobs = new List<JobInfo>();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            WriteBehind();
            using SqliteRows r = query.State is { } state
                ? Query($"SELECT {JobColumns} FROM ipyrpc_jobs WHERE queue = $queue AND state = $state ORDER BY created DESC, seq DESC", ("$queue", Name), ("$state", (long)state))
                : Query($"SELECT {JobColumns} FROM ipyrpc_jobs WHERE queue = $queue ORDER BY created DESC, seq DESC", ("$queue", Name));
            while (jobs.Count < query.Limit && r.Read())
            {
                JobInfo info = ReadInfo(r);
                if (query.Matches(info.State, info.Function)) jobs.Add(info);
            }
        }

        return new(jobs);
    }

    /// <inheritdoc/>
    public ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default)
        => Locked(() => Cancel(jobId), $"job {jobId} was not cancelled");

    private ValueTask<bool> Cancel(string jobId)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            WriteBehind(jobId);
            bool cancelled = InTransaction(() =>
            {
                using SqliteRows r = Query("SELECT state, function FROM ipyrpc_jobs WHERE id = $id AND queue = $queue", ("$id", jobId), ("$queue", Name));
                if (!r.Read()) return false;
                int state = r.GetInt32(0);
                string function = r.GetString(1);
                r.Close();
                if (state == Queued)
                {
                    return Finish(jobId, Queued, null, JobOutcome.CancelledBy(new JobRequest { Id = jobId, Function = function }, whileQueued: true));
                }

                return state == Running && Execute("UPDATE ipyrpc_jobs SET cancel = 1 WHERE id = $id AND state = 1", ("$id", jobId)) == 1;
            });

            if (cancelled && _leases.TryGetValue(jobId, out Lease? local)) local.Cancel();
            return new(cancelled);
        }
    }

    /// <summary>
    /// Runs what a server asks of the queue for a caller. The file's write lock held by another process past
    /// <see cref="SqliteJobQueueOptions.BusyTimeout"/> fails it as <see cref="JobQueueUnavailableException"/> (the caller's
    /// <c>unavailable</c>): the transaction that met the lock rolled back, so <paramref name="consequence"/> is certain.
    /// </summary>
    private ValueTask<T> Locked<T>(Func<ValueTask<T>> request, string consequence)
    {
        try
        {
            return request();
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6) // SQLITE_BUSY, SQLITE_LOCKED
        {
            throw new JobQueueUnavailableException(Name, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"The job queue \"{Name}\" could not write its file: another process held it locked past the busy timeout ({_options.BusyTimeout.TotalSeconds:0.###} s): {consequence}."), e);
        }
    }

    /// <inheritdoc/>
    public ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            // Written with the next write (usually the next call's outcome), or by the background loop, or before this
            // object reads: a release lost to a crash only keeps a result until retention forgets it.
            if (_disposed) return default;
            (_releases ??= []).Add(jobId);
            if (_releases.Count >= 256) InTransaction(WriteReleases);
        }

        return default;
    }

    /// <inheritdoc/>
    public async ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        var taker = new Taker(this, workerId, leaseDuration == Timeout.InfiniteTimeSpan ? TimeSpan.FromDays(3650) : leaseDuration);
        // Registered before the taker waits, so that once the stop's Cancel returns the taker is out of the list: a
        // server stopping hands its running jobs back right after, and a slot that had just begun to wait must not
        // take one (it would run it under a cancelled token and hand it back again, an attempt lost).
        using CancellationTokenRegistration registration = cancellationToken.Register(static s =>
        {
            var t = (Taker)s!;
            lock (t.Queue._gate)
            {
                if (t.Node?.List is not null) t.Queue._takers.Remove(t.Node);
                t.Result.TrySetResult(null);
            }
        }, taker);
        lock (_gate)
        {
            // Under the lock, a stop either shows in the token here or its callback waits for the lock and unlists.
            if (_disposed || cancellationToken.IsCancellationRequested) return null;
            taker.Node = _takers.AddLast(taker);
            DispatchTakers();
        }

        return await taker.Result.Task.ConfigureAwait(false);
    }

    // ---------------------------------------------------------------- workers' side, under _gate

    private void Insert(string id, JobRequest request, int state, string? worker, long? until, long? started) => Execute("""
        INSERT INTO ipyrpc_jobs (id, queue, function, state, request, args, created, deadline, detached, retained, attempts, worker, lease_until, started, owner)
        VALUES ($id, $queue, $function, $state, $request, $args, $created, $deadline, $detached, $retained, $attempts, $worker, $until, $started, $owner)
        """,
        ("$id", id), ("$queue", Name), ("$function", request.Function), ("$request", JobCodec.EncodeRequest(request)),
        ("$args", request.Arguments.ToArray()), ("$created", request.CreatedAt.ToUnixTimeMilliseconds()),
        ("$deadline", request.Deadline?.ToUnixTimeMilliseconds()), ("$detached", request.Detached), ("$retained", (long)request.Arguments.Length),
        ("$state", (long)state), ("$attempts", state == Queued ? 0L : 1L), ("$worker", worker), ("$until", until), ("$started", started), ("$owner", request.Caller?.Name));

    /// <summary>Writes a job this object's worker runs and has not written yet (see <see cref="SubmitAsync"/>) as running, its lease from now.</summary>
    private void Write(Lease lease)
    {
        if (lease.UnwrittenSince is not { } started) return;
        InTransaction(() => Insert(lease.Request.Id, lease.Request, Running, lease.WorkerId, Now() + (long)lease.Duration.TotalMilliseconds, started));
        lease.UnwrittenSince = null;
    }

    /// <summary>
    /// Writes what this object has kept back: the jobs its workers run that are not written yet (all of them, or those
    /// running for <paramref name="olderThan"/> and more), and the releases of delivered results.
    /// </summary>
    private void WriteBehind(TimeSpan? olderThan = null)
    {
        long cutoff = olderThan is { } age ? Now() - (long)age.TotalMilliseconds : long.MaxValue;
        if (_releases is not { Count: > 0 } && !_leases.Values.Any(l => l.UnwrittenSince <= cutoff)) return; // nothing kept back: no commit
        InTransaction(() =>
        {
            WriteReleases();
            foreach (Lease lease in _leases.Values)
            {
                if (lease.UnwrittenSince <= cutoff) Write(lease);
            }
        });
    }

    /// <summary>Writes what this object has kept back of one job: the job itself, if its worker runs it unwritten, or its release.</summary>
    private void WriteBehind(string jobId)
    {
        Lease? unwritten = _leases.TryGetValue(jobId, out Lease? lease) && lease.UnwrittenSince is not null ? lease : null;
        if (unwritten is null && _releases?.Contains(jobId) != true) return; // nothing of it kept back: no commit
        InTransaction(() =>
        {
            WriteReleases();
            if (unwritten is not null) Write(unwritten);
        });
    }

    /// <summary>Marks the results delivered since the last write released (inside a transaction).</summary>
    private void WriteReleases()
    {
        if (_releases is not { Count: > 0 } releases) return;
        foreach (string id in releases)
        {
            Execute("UPDATE ipyrpc_jobs SET released = 1, result = NULL, retained = output_bytes WHERE id = $id AND state >= 2 AND released = 0", ("$id", id));
        }

        releases.Clear();
    }

    private void DispatchTakers()
    {
        while (_takers.First is { } node)
        {
            Lease? lease = TryTake(node.Value);
            if (lease is null) return;
            _takers.RemoveFirst();
            node.Value.Node = null;
            if (!node.Value.Result.TrySetResult(lease))
            {
                Abandon(lease); // the taker gave up meanwhile
            }
        }
    }

    private Lease? TryTake(Taker taker)
    {
        while (true)
        {
            long now = Now();
            // A read first: an idle poll must not write (every write wakes every other process).
            long? candidate = Scalar<long?>("""
                SELECT coalesce(
                    (SELECT seq FROM ipyrpc_jobs WHERE queue = $queue AND state = 1 AND lease_until < $now ORDER BY seq LIMIT 1),
                    (SELECT seq FROM ipyrpc_jobs WHERE queue = $queue AND state = 0 ORDER BY seq LIMIT 1))
                """, ("$queue", Name), ("$now", now));
            if (candidate is null) return null;

            Lease? lease = InTransaction(() =>
            {
                using SqliteRows r = Query("""
                    UPDATE ipyrpc_jobs
                    SET state = 1, attempts = attempts + 1, worker = $worker, lease_until = $until, cancel = 0, started = coalesce(started, $now)
                    WHERE seq = $seq AND (state = 0 OR (state = 1 AND lease_until < $now AND cancel = 0))
                    RETURNING id, request, args, attempts
                    """,
                    ("$worker", taker.WorkerId), ("$until", now + (long)taker.Duration.TotalMilliseconds), ("$now", now), ("$seq", candidate.Value));
                if (!r.Read())
                {
                    r.Close();
                    return EndLapsedCancelled(candidate.Value, now);
                }

                string id = r.GetString(0);
                JobRequest request = JobCodec.DecodeRequest(id, r.GetBytes(1), r.IsDBNull(2) ? ReadOnlyMemory<byte>.Empty : r.GetBytes(2));
                int attempt = r.GetInt32(3);
                r.Close();
                var taken = new Lease(this, request, attempt, taker.Duration);
                if (request.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
                {
                    Finish(id, Running, attempt, JobOutcome.DeadlinePassed(request, whileQueued: true));
                    return taken.Expired();
                }

                if (attempt > 1)
                {
                    long started = Append(id, KindStarted, OutputStream.Stdout, null, attempt);
                    // Delivered again: an earlier attempt's items and progress are not this run's; its console output stays.
                    // Dropped after the announcement is added, so no event is ever numbered (gseq) as a dropped one was:
                    // other processes read the events past the last number they saw.
                    long dropped = Scalar<long?>("SELECT sum(length(CAST(text AS BLOB))) FROM ipyrpc_events WHERE job = $id AND kind = $k AND stream > 1 AND n < $n", ("$id", id), ("$k", KindOutput), ("$n", started)) ?? 0;
                    if (dropped > 0)
                    {
                        Execute("DELETE FROM ipyrpc_events WHERE job = $id AND kind = $k AND stream > 1 AND n < $n", ("$id", id), ("$k", KindOutput), ("$n", started));
                        Execute("UPDATE ipyrpc_jobs SET output_bytes = output_bytes - $b, retained = retained - $b WHERE id = $id", ("$b", dropped), ("$id", id));
                    }
                }

                return taken;
            });

            if (lease is null || lease.IsExpired) continue; // taken by another process meanwhile, or expired: look again
            _leases[lease.Request.Id] = lease;
            return lease;
        }
    }

    /// <summary>
    /// A lapsed job whose cancel was asked for while it ran ends cancelled rather than running again (its caller was
    /// told it is cancelled). Returns an expired marker when it ended one, else null (taken by another process).
    /// </summary>
    private Lease? EndLapsedCancelled(long seq, long now)
    {
        using SqliteRows r = Query("SELECT id, request, attempts FROM ipyrpc_jobs WHERE seq = $seq AND state = 1 AND lease_until < $now AND cancel = 1",
            ("$seq", seq), ("$now", now));
        if (!r.Read()) return null;
        string id = r.GetString(0);
        JobRequest request = JobCodec.DecodeRequest(id, r.GetBytes(1), ReadOnlyMemory<byte>.Empty);
        int attempt = r.GetInt32(2);
        r.Close();
        Finish(id, Running, attempt, JobOutcome.CancelledBy(request, whileQueued: false));
        return new Lease(this, request, attempt, TimeSpan.Zero).Expired();
    }

    private bool Renew(Lease lease)
    {
        lock (_gate)
        {
            if (_disposed) return false;
            if (lease.UnwrittenSince is not null)
            {
                Write(lease); // with its lease from now
                return true;
            }

            using SqliteRows r = Query("UPDATE ipyrpc_jobs SET lease_until = $until WHERE id = $id AND state = 1 AND attempts = $attempt RETURNING cancel",
                ("$until", Now() + (long)lease.Duration.TotalMilliseconds), ("$id", lease.Request.Id), ("$attempt", lease.Attempt));
            if (!r.Read())
            {
                Lost(lease);
                return false;
            }

            if (r.GetInt32(0) == 1) lease.Cancel();
            return true;
        }
    }

    private bool Complete(Lease lease, JobOutcome outcome)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Flush(lease);
            bool done = InTransaction(() =>
            {
                WriteReleases();
                return lease.UnwrittenSince is { } started ? WriteFinished(lease, started, outcome) : Finish(lease.Request.Id, Running, lease.Attempt, outcome);
            });
            _leases.TryRemove(new KeyValuePair<string, Lease>(lease.Request.Id, lease));
            return done;
        }
    }

    private void Abandon(Lease lease)
    {
        lock (_gate)
        {
            if (_disposed) return;
            Write(lease);
            Flush(lease);
            InTransaction(() =>
            {
                // A job whose cancel was asked for while it ran ends cancelled rather than running again elsewhere.
                long? cancel = Scalar<long?>("SELECT cancel FROM ipyrpc_jobs WHERE id = $id AND state = 1 AND attempts = $attempt", ("$id", lease.Request.Id), ("$attempt", lease.Attempt));
                if (cancel == 1) return Finish(lease.Request.Id, Running, lease.Attempt, JobOutcome.CancelledBy(lease.Request, whileQueued: false));
                return Execute("UPDATE ipyrpc_jobs SET state = 0, lease_until = NULL WHERE id = $id AND state = 1 AND attempts = $attempt", ("$id", lease.Request.Id), ("$attempt", lease.Attempt)) == 1;
            });
            _leases.TryRemove(new KeyValuePair<string, Lease>(lease.Request.Id, lease));
            DispatchTakers();
        }
    }

    private void Lost(Lease lease)
    {
        _leases.TryRemove(new KeyValuePair<string, Lease>(lease.Request.Id, lease));
        lease.Lose();
    }

    /// <summary>Writes a lease's buffered output in one transaction and tells this object's watchers.</summary>
    private void Flush(Lease lease)
    {
        List<OutputChunk>? chunks = lease.TakePending();
        if (chunks is null) return;
        long bytes = chunks.Sum(c => (long)Encoding.UTF8.GetByteCount(c.Text)); // as the text is stored (UTF-8)
        bool written = InTransaction(() =>
        {
            Write(lease); // its output goes on disk, so the job does first
            long? last = Scalar<long?>("""
                UPDATE ipyrpc_jobs SET last_event = last_event + $count, output_bytes = output_bytes + $bytes, retained = retained + $bytes
                WHERE id = $id AND state = 1 AND attempts = $attempt RETURNING last_event
                """, ("$count", (long)chunks.Count), ("$bytes", bytes), ("$id", lease.Request.Id), ("$attempt", lease.Attempt));
            if (last is null) return false; // the lease is gone: the output of a stale attempt is dropped
            long n = last.Value - chunks.Count;
            foreach (OutputChunk c in chunks)
            {
                Execute("INSERT INTO ipyrpc_events (job, n, kind, stream, text) VALUES ($job, $n, 1, $stream, $text)",
                    ("$job", lease.Request.Id), ("$n", ++n), ("$stream", (long)c.Stream), ("$text", c.Text));
                Deliver(lease.Request.Id, new JobEvent(n, JobEventKind.Output, c.Stream, c.Text));
            }

            TrimOutput(lease.Request.Id);
            return true;
        });

        if (!written)
        {
            Lost(lease);
        }
    }

    private void TrimOutput(string jobId)
    {
        long cap = _options.Retention.MaxOutputBytesPerJob;
        long kept = Scalar<long>("SELECT output_bytes FROM ipyrpc_jobs WHERE id = $id", ("$id", jobId));
        if (kept <= cap) return;
        var drop = new List<(long N, long Bytes)>();
        using (SqliteRows r = Query("SELECT n, length(CAST(text AS BLOB)) FROM ipyrpc_events WHERE job = $id AND kind = 1 ORDER BY n", ("$id", jobId)))
        {
            while (kept > cap && r.Read())
            {
                drop.Add((r.GetInt64(0), r.GetInt64(1)));
                kept -= r.GetInt64(1);
            }
        }

        foreach ((long n, long bytes) in drop)
        {
            Execute("DELETE FROM ipyrpc_events WHERE job = $id AND n = $n", ("$id", jobId), ("$n", n));
            Execute("UPDATE ipyrpc_jobs SET output_bytes = output_bytes - $b, retained = retained - $b WHERE id = $id", ("$b", bytes), ("$id", jobId));
        }
    }

    /// <summary>Ends a job in <paramref name="fromState"/> (and, when given, the attempt) with <paramref name="outcome"/>; inside a transaction.</summary>
    private bool Finish(string jobId, int fromState, int? attempt, JobOutcome outcome)
    {
        byte[] result = outcome.Error is null ? outcome.Result.ToArray() : [];
        long? last = Scalar<long?>("""
            UPDATE ipyrpc_jobs
            SET state = $state, completed = $now, outcome = $outcome, result = $result, args = NULL, lease_until = NULL,
                last_event = last_event + 1, retained = output_bytes + $size
            WHERE id = $id AND state = $from AND ($attempt IS NULL OR attempts = $attempt)
            RETURNING last_event
            """,
            ("$state", (long)outcome.State), ("$now", Now()), ("$outcome", JobCodec.EncodeOutcome(outcome.WithoutResult())), ("$result", result),
            ("$size", (long)result.Length), ("$id", jobId), ("$from", (long)fromState), ("$attempt", (long?)attempt));
        if (last is null) return false;
        Execute("INSERT INTO ipyrpc_events (job, n, kind) VALUES ($job, $n, 2)", ("$job", jobId), ("$n", last.Value));
        Deliver(jobId, new JobEvent(last.Value, JobEventKind.Completed, Outcome: outcome));
        return true;
    }

    /// <summary>Writes a job that ran unwritten as ended with <paramref name="outcome"/>, in one row (inside a transaction).</summary>
    private bool WriteFinished(Lease lease, long started, JobOutcome outcome)
    {
        JobRequest request = lease.Request;
        byte[] result = outcome.Error is null ? outcome.Result.ToArray() : [];
        Execute("""
            INSERT INTO ipyrpc_jobs (id, queue, function, state, request, created, started, completed, deadline, attempts, worker, detached, owner, last_event, outcome, result, retained)
            VALUES ($id, $queue, $function, $state, $request, $created, $started, $completed, $deadline, 1, $worker, 0, $owner, 1, $outcome, $result, $size)
            """,
            ("$id", request.Id), ("$queue", Name), ("$function", request.Function), ("$state", (long)outcome.State), ("$request", JobCodec.EncodeRequest(request)),
            ("$created", request.CreatedAt.ToUnixTimeMilliseconds()), ("$started", started), ("$completed", Now()), ("$deadline", request.Deadline?.ToUnixTimeMilliseconds()),
            ("$worker", lease.WorkerId), ("$owner", request.Caller?.Name), ("$outcome", JobCodec.EncodeOutcome(outcome.WithoutResult())), ("$result", result), ("$size", (long)result.Length));
        lease.UnwrittenSince = null;
        // No event row: no one outside this object can be watching a job that was not on disk, and a watcher that comes
        // later finds it ended by its state (Replay).
        Deliver(request.Id, new JobEvent(1, JobEventKind.Completed, Outcome: outcome));
        return true;
    }

    private long Append(string jobId, int kind, OutputStream stream, string? text, int attempt)
    {
        long n = Scalar<long>("UPDATE ipyrpc_jobs SET last_event = last_event + 1 WHERE id = $id RETURNING last_event", ("$id", jobId));
        Execute("INSERT INTO ipyrpc_events (job, n, kind, stream, text, attempt) VALUES ($job, $n, $kind, $stream, $text, $attempt)",
            ("$job", jobId), ("$n", n), ("$kind", (long)kind), ("$stream", (long)stream), ("$text", text), ("$attempt", (long)attempt));
        Deliver(jobId, new JobEvent(n, (JobEventKind)kind, stream, text, Attempt: attempt));
        return n;
    }

    // ---------------------------------------------------------------- watchers, under _gate

    private Watcher AddWatcher(string jobId, IJobObserver observer, long after)
    {
        var watcher = new Watcher(this, jobId, observer, after);
        (_watchers.TryGetValue(jobId, out List<Watcher>? list) ? list : _watchers[jobId] = []).Add(watcher);
        return watcher;
    }

    private void Deliver(string jobId, in JobEvent e)
    {
        if (_inTransaction)
        {
            // Watchers hear of an event once it is committed.
            (_deferred ??= []).Add((jobId, e));
            return;
        }

        if (!_watchers.TryGetValue(jobId, out List<Watcher>? list)) return;
        foreach (Watcher w in list.ToArray())
        {
            w.Deliver(e);
        }

        list.RemoveAll(w => w.Done);
        if (list.Count == 0) _watchers.Remove(jobId);
    }

    private void Replay(Watcher watcher)
    {
        var events = new List<JobEvent>();
        using (SqliteRows r = Query("SELECT n, kind, stream, text, attempt FROM ipyrpc_events WHERE job = $id AND n > $after ORDER BY n", ("$id", watcher.JobId), ("$after", watcher.Last)))
        {
            while (r.Read()) events.Add(ReadEvent(watcher.JobId, r, 0));
        }

        foreach (JobEvent e in events)
        {
            watcher.Deliver(e.Kind == JobEventKind.Completed ? e with { Outcome = LoadOutcome(watcher.JobId) } : e);
        }

        // A finished job whose completion event came before the position asked for: its outcome is still due.
        if (!watcher.Done && Scalar<long>("SELECT state FROM ipyrpc_jobs WHERE id = $id", ("$id", watcher.JobId)) >= FirstFinished)
        {
            watcher.Deliver(new JobEvent(watcher.Last, JobEventKind.Completed, Outcome: LoadOutcome(watcher.JobId)));
        }
    }

    /// <summary>Reads the events other processes wrote since last time and hands them to this object's watchers.</summary>
    private void Pump()
    {
        var events = new List<(string Job, JobEvent Event)>();
        using (SqliteRows r = Query("SELECT n, kind, stream, text, attempt, job, gseq FROM ipyrpc_events WHERE gseq > $g ORDER BY gseq LIMIT 10000", ("$g", _lastEvent)))
        {
            while (r.Read())
            {
                _lastEvent = r.GetInt64(6);
                string job = r.GetString(5);
                if (_watchers.ContainsKey(job)) events.Add((job, ReadEvent(job, r, 0)));
            }
        }

        foreach ((string job, JobEvent e) in events)
        {
            Deliver(job, e.Kind == JobEventKind.Completed ? e with { Outcome = LoadOutcome(job) } : e);
        }
    }

    private JobOutcome LoadOutcome(string jobId)
    {
        using SqliteRows r = Query("SELECT outcome, result, released, function FROM ipyrpc_jobs WHERE id = $id", ("$id", jobId));
        if (!r.Read() || r.IsDBNull(0))
        {
            return JobOutcome.Failure(JobState.Failed, new RemoteError { Code = Protocol.ErrorCodes.NotFound, Message = $"Job {jobId} was forgotten (retention) before its outcome could be read." });
        }

        JobOutcome outcome = JobCodec.DecodeOutcome(r.GetBytes(0));
        if (outcome.Error is null && r.GetInt32(2) == 1)
        {
            return JobOutcome.Released(new JobRequest { Id = jobId, Function = r.GetString(3) });
        }

        return r.IsDBNull(1) ? outcome : outcome with { Result = r.GetBytes(1) };
    }

    private static JobEvent ReadEvent(string job, SqliteRows r, int offset) => new(
        r.GetInt64(offset),
        (JobEventKind)r.GetInt32(offset + 1),
        (OutputStream)r.GetInt32(offset + 2),
        r.IsDBNull(offset + 3) ? null : r.GetString(offset + 3),
        null,
        r.GetInt32(offset + 4));

    private IReadOnlyList<OutputChunk> ReadOutput(string jobId)
    {
        var output = new List<OutputChunk>();
        using SqliteRows r = Query("SELECT stream, text FROM ipyrpc_events WHERE job = $id AND kind = 1 AND stream < 2 ORDER BY n", ("$id", jobId)); // console text, not stream items or progress (JobData)
        while (r.Read()) output.Add(new OutputChunk((OutputStream)r.GetInt32(0), r.GetString(1)));
        return output;
    }

    private JobInfo ReadInfo(SqliteRows r)
    {
        var state = (JobState)r.GetInt32(3);
        JobOutcome? outcome = r.IsDBNull(12) ? null : JobCodec.DecodeOutcome(r.GetBytes(12));
        return new JobInfo
        {
            Id = r.GetString(0),
            Function = r.GetString(1),
            Queue = r.GetString(2),
            State = state,
            CreatedAt = Time(r.GetInt64(4)),
            StartedAt = r.IsDBNull(5) ? null : Time(r.GetInt64(5)),
            CompletedAt = r.IsDBNull(6) ? null : Time(r.GetInt64(6)),
            Deadline = r.IsDBNull(7) ? null : Time(r.GetInt64(7)),
            Attempts = r.GetInt32(8),
            Worker = r.IsDBNull(9) ? null : r.GetString(9),
            Detached = r.GetInt32(10) == 1,
            LastSequence = r.GetInt64(11),
            Outcome = outcome,
            ResultReleased = r.GetInt32(13) == 1,
            RetainedBytes = r.GetInt64(14),
            Owner = r.IsDBNull(15) ? null : r.GetString(15),
        };
    }

    // ---------------------------------------------------------------- the background loop

    /// <summary>
    /// Kicks the background loop whenever the file's write-ahead log changes. Every commit writes to it, this object's own
    /// too, and each notice wakes a thread: so once this object's own workers take a job it submitted (a server that runs
    /// its own calls, whose notices would nearly all be its own commits) the loop stops watching, and what other processes
    /// write reaches it at the next poll. A worker process, and a server whose calls workers elsewhere run, keep watching.
    /// Null when the file system gives no notices.
    /// </summary>
    private FileSystemWatcher? WatchWal()
    {
        FileSystemWatcher? watcher = null;
        try
        {
            watcher = new FileSystemWatcher(System.IO.Path.GetDirectoryName(Path)!, System.IO.Path.GetFileName(Path) + "-wal")
            {
                NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.Size,
                IncludeSubdirectories = false,
            };
            watcher.Changed += (_, _) =>
            {
                try
                {
                    if (AwaitsOthers) Kick();
                }
                catch (ObjectDisposedException)
                {
                    // A notice that came as the queue closed: nothing is waiting for it.
                }
            };
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception e) when (e is IOException or PlatformNotSupportedException or UnauthorizedAccessException or ArgumentException)
        {
            watcher?.Dispose(); // no notices to be had (inotify's limit, a file system without them): polling only
            return null;
        }
    }

    /// <summary>Whether this object waits for anything (a job to take, an event of a job watched). Read without the lock: a hint.</summary>
    private bool AwaitsOthers => _takers.Count > 0 || _watchers.Count > 0;

    private void Kick()
    {
        if (Interlocked.Exchange(ref _kicked, 1) == 0) _kick.Release();
    }

    private async Task LoopAsync()
    {
        DateTime nextLapseCheck = DateTime.UtcNow, nextDeadlines = DateTime.UtcNow, nextRetention = DateTime.UtcNow, nextCheckpoint = DateTime.UtcNow;
        TimeSpan wait = _options.PollInterval;
        int looksAgain = 0; // the looks left after a notice whose write did not show (see below)
        while (!_stopping.IsCancellationRequested)
        {
            bool kicked;
            try
            {
                kicked = await _kick.WaitAsync(wait, _stopping.Token).ConfigureAwait(false);
                wait = _options.PollInterval;
            }
            catch (OperationCanceledException)
            {
                return;
            }

            Volatile.Write(ref _kicked, 0);
            DateTime now = DateTime.UtcNow;
            if (now >= nextCheckpoint)
            {
                Checkpoint();
                nextCheckpoint = now + TimeSpan.FromMilliseconds(500);
            }

            try
            {
                if (_fileWatch is { EnableRaisingEvents: true } ownNotices && Volatile.Read(ref _runsOwnCalls))
                {
                    ownNotices.EnableRaisingEvents = false;
                }

                lock (_gate)
                {
                    if (_disposed) return;
                    WriteBehind(_options.PollInterval);
                    foreach (Lease lease in _leases.Values) Flush(lease);

                    long version = Scalar<long>("PRAGMA data_version");
                    bool changed = version != _dataVersion;
                    _dataVersion = version;
                    bool watching = _fileWatch is { EnableRaisingEvents: true };

                    if (changed)
                    {
                        looksAgain = 0;
                        Pump();
                        SignalCancels();
                    }
                    else if (watching)
                    {
                        // A notice came, but no other process's write shows: SQLite writes the log, then marks the commit in
                        // the shared index, which gives no notice. Look again in 1, 10 and 100 ms rather than only at the
                        // next poll. Also when this object wrote since its last look: the notice may be its own, or another
                        // process's that came with it (a worker that wrote a job's outcome, looked at nothing since, and then
                        // was told of the server's next job missed that job until its poll).
                        if (kicked) looksAgain = 3;
                        if (looksAgain > 0)
                        {
                            wait = TimeSpan.FromMilliseconds(looksAgain switch { 3 => 1, 2 => 10, _ => 100 });
                            looksAgain--;
                        }
                    }

                    if (changed || (now >= nextLapseCheck && _takers.Count > 0))
                    {
                        DispatchTakers();
                        nextLapseCheck = now + TimeSpan.FromMilliseconds(100);
                    }

                    if (now >= nextDeadlines)
                    {
                        ExpireQueued();
                        nextDeadlines = now + TimeSpan.FromMilliseconds(50);
                    }

                    if (now >= nextRetention)
                    {
                        Trim();
                        nextRetention = now + TimeSpan.FromMilliseconds(Math.Clamp(_options.Retention.MaxAge.TotalMilliseconds / 4, 50, 1000));
                    }
                }
            }
            catch (SqliteException)
            {
                // The file is busy or briefly unavailable: the next round tries again.
            }
        }
    }

    /// <summary>Copies the WAL into the database without blocking anyone (PASSIVE), outside the queue's lock.</summary>
    private void Checkpoint()
    {
        try
        {
            using SqliteCommand command = _checkpoints.CreateCommand();
            command.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
            command.ExecuteNonQuery();
        }
        catch (SqliteException)
        {
            // Busy: the next round checkpoints.
        }
    }

    private void SignalCancels()
    {
        if (_leases.IsEmpty) return;
        var cancelled = new List<string>();
        using (SqliteRows r = Query("SELECT id FROM ipyrpc_jobs WHERE queue = $queue AND state = 1 AND cancel = 1", ("$queue", Name)))
        {
            while (r.Read()) cancelled.Add(r.GetString(0));
        }

        foreach (string id in cancelled)
        {
            if (_leases.TryGetValue(id, out Lease? lease)) lease.Cancel();
        }
    }

    private void ExpireQueued()
    {
        var expired = new List<(string Id, string Function)>();
        using (SqliteRows r = Query("SELECT id, function FROM ipyrpc_jobs WHERE queue = $queue AND state = 0 AND deadline IS NOT NULL AND deadline <= $now LIMIT 256", ("$queue", Name), ("$now", Now())))
        {
            while (r.Read()) expired.Add((r.GetString(0), r.GetString(1)));
        }

        foreach ((string id, string function) in expired)
        {
            InTransaction(() => Finish(id, Queued, null, JobOutcome.DeadlinePassed(new JobRequest { Id = id, Function = function }, whileQueued: true)));
        }
    }

    /// <summary>Forgets finished jobs past the retention age, and the oldest while over the byte budget.</summary>
    private void Trim()
    {
        JobRetention retention = _options.Retention;
        long cutoff = Now() - (long)Math.Min(retention.MaxAge.TotalMilliseconds, long.MaxValue / 4);
        var forget = new List<string>();
        using (SqliteRows r = Query("SELECT id FROM ipyrpc_jobs WHERE queue = $queue AND state >= 2 AND completed < $cutoff", ("$queue", Name), ("$cutoff", cutoff)))
        {
            while (r.Read()) forget.Add(r.GetString(0));
        }

        long total = Scalar<long?>($"SELECT sum(retained) + count(*) * {RecordOverheadBytes} FROM ipyrpc_jobs WHERE queue = $queue AND state >= 2 AND completed >= $cutoff", ("$queue", Name), ("$cutoff", cutoff)) ?? 0;
        if (total > retention.MaxBytes)
        {
            using SqliteRows r = Query("SELECT id, retained FROM ipyrpc_jobs WHERE queue = $queue AND state >= 2 AND completed >= $cutoff ORDER BY completed, seq", ("$queue", Name), ("$cutoff", cutoff));
            while (total > retention.MaxBytes && r.Read())
            {
                forget.Add(r.GetString(0));
                total -= r.GetInt64(1) + RecordOverheadBytes;
            }
        }

        if (forget.Count == 0) return; // nothing to write
        InTransaction(() =>
        {
            foreach (string id in forget)
            {
                // The newest event row stays, whoever's it is: new rows then always number above every
                // row ever read (SQLite numbers a new row one above the largest), which watchers rely on.
                Execute("DELETE FROM ipyrpc_events WHERE job = $id AND gseq < (SELECT max(gseq) FROM ipyrpc_events)", ("$id", id));
                Execute("DELETE FROM ipyrpc_jobs WHERE id = $id", ("$id", id));
            }
        });
    }

    // ---------------------------------------------------------------- SQL helpers, under _gate

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private SqliteStatement Statement(string sql)
    {
        if (!_statements.TryGetValue(sql, out SqliteStatement? statement))
        {
            statement = new SqliteStatement(_db.Handle!, sql);
            _statements[sql] = statement;
        }

        return statement;
    }

    private int Execute(string sql, params (string Name, object? Value)[] parameters) => Statement(sql).Execute(parameters);

    private T Scalar<T>(string sql, params (string Name, object? Value)[] parameters)
    {
        using SqliteRows r = Statement(sql).Query(parameters);
        if (!r.Read() || r.IsDBNull(0)) return default!;
        return (T)(object)r.GetInt64(0);
    }

    private SqliteRows Query(string sql, params (string Name, object? Value)[] parameters) => Statement(sql).Query(parameters);

    private T InTransaction<T>(Func<T> work)
    {
        if (_inTransaction) return work();
        Execute("BEGIN IMMEDIATE");
        _inTransaction = true;
        List<(string Job, JobEvent Event)>? committed = null;
        try
        {
            T result = work();
            Execute("COMMIT");
            committed = _deferred;
            return result;
        }
        catch
        {
            Execute("ROLLBACK");
            throw;
        }
        finally
        {
            _inTransaction = false;
            _deferred = null;
            if (committed is not null)
            {
                foreach ((string job, JobEvent e) in committed) Deliver(job, e);
            }
        }
    }

    private void InTransaction(Action work) => InTransaction(() =>
    {
        work();
        return true;
    });

    /// <summary>
    /// Closes the file. Jobs this object's workers still hold stay leased until their leases lapse,
    /// then go to another worker; queued jobs wait for the next process that opens the file.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed) return;
            WriteBehind();
            foreach (Lease lease in _leases.Values) Flush(lease);
            _disposed = true;
            foreach (Taker t in _takers) t.Result.TrySetResult(null);
            _takers.Clear();
            foreach (List<Watcher> list in _watchers.Values)
            {
                foreach (Watcher w in list) w.Stop();
            }

            _watchers.Clear();
        }

        _stopping.Cancel();
        await _loop.ConfigureAwait(false);
        _fileWatch?.Dispose(); // after the loop, which may switch it off
        lock (_gate)
        {
            foreach (SqliteStatement statement in _statements.Values) statement.Dispose();
            _db.Dispose();
            _checkpoints.Dispose();
        }

        foreach (Lease lease in _leases.Values) lease.Lose();
        _stopping.Dispose();
        _kick.Dispose();
    }

    private sealed class Taker(SqliteJobQueue queue, string workerId, TimeSpan duration)
    {
        public SqliteJobQueue Queue => queue;

        public string WorkerId => workerId;

        public TimeSpan Duration => duration;

        public LinkedListNode<Taker>? Node { get; set; }

        public TaskCompletionSource<JobLease?> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Watcher(SqliteJobQueue queue, string jobId, IJobObserver observer, long after) : IDisposable
    {
        public string JobId => jobId;

        public long Last { get; private set; } = after;

        public bool Done { get; private set; }

        public void Deliver(in JobEvent e)
        {
            if (Done) return;
            if (e.Kind != JobEventKind.Completed && e.Sequence <= Last) return; // seen already
            Last = Math.Max(Last, e.Sequence);
            if (e.Kind == JobEventKind.Completed) Done = true;
            observer.OnEvent(e);
        }

        public void Stop() => Done = true;

        public void Dispose()
        {
            lock (queue._gate)
            {
                Done = true;
                if (queue._watchers.TryGetValue(jobId, out List<Watcher>? list))
                {
                    list.Remove(this);
                    if (list.Count == 0) queue._watchers.Remove(jobId);
                }
            }
        }
    }

    private sealed class Lease : JobLease
    {
        private readonly SqliteJobQueue _queue;
        private readonly CancellationTokenSource _cancel;
        private List<OutputChunk>? _pending;
        private bool _expired;

        public Lease(SqliteJobQueue queue, JobRequest request, int attempt, TimeSpan duration)
            : this(queue, request, attempt, duration, new CancellationTokenSource())
        {
        }

        private Lease(SqliteJobQueue queue, JobRequest request, int attempt, TimeSpan duration, CancellationTokenSource cancel)
            : base(request, attempt, cancel.Token)
        {
            _queue = queue;
            _cancel = cancel;
            Duration = duration;
        }

        public TimeSpan Duration { get; }

        /// <summary>When this object's worker took the job, while the job is not written yet (see <see cref="SubmitAsync"/>).</summary>
        public long? UnwrittenSince { get; set; }

        /// <summary>The worker that holds it.</summary>
        public string? WorkerId { get; init; }

        public bool IsExpired => _expired;

        public override TimeSpan? RenewEvery => Duration / 3;

        public Lease Expired()
        {
            _expired = true;
            return this;
        }

        public override void Write(OutputStream stream, string text)
        {
            lock (this) (_pending ??= []).Add(new OutputChunk(stream, text));
            _queue.Kick();
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

        public void Lose() => Cancel();

        public override ValueTask<bool> RenewAsync(CancellationToken cancellationToken = default) => new(_queue.Renew(this));

        public override ValueTask<bool> CompleteAsync(JobOutcome outcome, CancellationToken cancellationToken = default) => new(_queue.Complete(this, outcome));

        public override ValueTask AbandonAsync(CancellationToken cancellationToken = default)
        {
            _queue.Abandon(this);
            return default;
        }
    }
}
