using System.Collections.Concurrent;
using System.Text;

namespace IpyRpc.Jobs;

/// <summary>Options of the <see cref="InMemoryJobQueue"/>.</summary>
public sealed record InMemoryJobQueueOptions
{
    /// <summary>The queue's name (for <see cref="FunctionOptions.Queue"/> and listings).</summary>
    public string Name { get; init; } = "memory";

    /// <summary>How long finished jobs are remembered and how many bytes of theirs are kept.</summary>
    public JobRetention Retention { get; init; } = new() { MaxAge = TimeSpan.FromHours(1), MaxBytes = 256L * 1024 * 1024 };
}

/// <summary>
/// The default queue: jobs live in this process only. Nothing is durable; in exchange a job costs
/// a channel write and a few small objects, and the server's own workers take it.
/// </summary>
public sealed class InMemoryJobQueue : IJobQueue
{
    // What a finished record costs beyond its result and output, counted against the byte budget: measured
    // as the heap 500,000 small calls leave behind (`bench/IpyRpc.Bench -- loop 500000 zmq 64`: 311 MB).
    internal const int RecordOverheadBytes = 640;
    // What a folded record costs (its slot in the finished ring and its entry in the index): measured as the live heap
    // a full budget of folded records leaves (`loop 1500000 64`: 175 MB for 1,342,177 records, 130 bytes each).
    internal const int FoldedOverheadBytes = 136;
    // The most output (in characters) a record folds with: folding copies it under the retention lock, and a record that
    // printed more is large enough that its objects matter little beside its text.
    internal const int FoldedOutputLimit = 16 * 1024;
    private readonly InMemoryJobQueueOptions _options;
    // Jobs waiting for a worker, and workers waiting for a job (oldest first), under _takeGate. A job offered while a
    // worker waits goes to that worker alone; on a thread that lends itself (ReplyHandoff: a ZeroMQ socket thread, an
    // HTTP request's thread), the worker's continuation then runs on that thread instead of a thread-pool thread waking.
    private readonly object _takeGate = new();
    private readonly Queue<Job> _ready = new();
    private readonly Queue<Taker> _takers = new();
    private bool _closed;
    private readonly ConcurrentDictionary<string, Job> _jobs = new();
    private readonly object _retentionGate = new();
    // Finished jobs in the order they finished, for retention: a job's record, or once a plain call has been
    // delivered, its folded record (no objects of its own: a busy server keeps hundreds of thousands, and the
    // collector would otherwise walk and promote every one). Under _retentionGate, as is the index of folded records.
    // The ring is kept in segments of fixed size, found by position through a small directory of them: it grows a
    // segment at a time (a whole ring copied on growth would stall every completion behind this lock and put ever
    // larger arrays on the large-object heap) and a segment the head has passed is reused for the tail.
    private const int SegmentShift = 8;
    private const int SegmentSize = 1 << SegmentShift;
    private RetainedSlot[]?[] _segments = new RetainedSlot[]?[4];
    private RetainedSlot[]? _spareSegment;
    private long _ringHead;
    private long _ringTail;
    // Folded records by their id's number (ids are the queue's prefix and a number), to their place in the ring: in
    // blocks of 64 consecutive numbers (8 bytes each), found through a small directory of them. A block is made when a
    // record of its numbers first folds and given up when the last of them is forgotten. (A dictionary entry a record
    // grew by doubling and rehashed every entry under this lock each time, stalling every finishing call: 54 ms at
    // 670,000 entries, timed alone on the bench's host. It also cost about 20 bytes a record more.)
    private const int IndexShift = 6;
    private const int IndexBlockSize = 1 << IndexShift;
    private readonly Dictionary<long, IndexBlock> _foldedIndex = [];
    private IndexBlock? _lastBlock; // the block folded into last (folds mostly come in order of number)
    private readonly NameTable _names = new();
    private int _foldedCount;
    private readonly string _idPrefix = Convert.ToHexString(BitConverter.GetBytes(Random.Shared.NextInt64())).ToLowerInvariant()[..10] + "-";
    private long _retainedBytes;
    private long _nextId;
    private Timer? _leaseSweeper;
    private volatile bool _disposed;

    /// <inheritdoc/>
    /// <remarks>Random, made with the queue: only the process this object lives in has it.</remarks>
    public ReadOnlyMemory<byte> PointerKey { get; } = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);

    /// <summary>Creates the queue.</summary>
    public InMemoryJobQueue(InMemoryJobQueueOptions? options = null)
    {
        _options = options ?? new InMemoryJobQueueOptions();
        IpyRpcTelemetry.Track(this);
    }

    /// <summary>Jobs queued and not yet taken by a worker (the <c>ipyrpc.queue.depth</c> metric).</summary>
    public int Waiting
    {
        get
        {
            lock (_takeGate) return _ready.Count;
        }
    }

    /// <inheritdoc/>
    public string Name => _options.Name;

    /// <summary>How many finished records are kept folded (for tests).</summary>
    internal int FoldedCount
    {
        get
        {
            lock (_retentionGate) return _foldedCount;
        }
    }

    /// <summary>How many blocks the index of folded records holds (for tests).</summary>
    internal int FoldedIndexBlocks
    {
        get
        {
            lock (_retentionGate) return _foldedIndex.Count;
        }
    }

    /// <summary>How many distinct names (functions, workers, owners) the folded records hold (for tests).</summary>
    internal int FoldedNames
    {
        get
        {
            lock (_retentionGate) return _names.Count;
        }
    }

    /// <inheritdoc/>
    public bool IsDurable => false;

    /// <inheritdoc/>
    public ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default)
    {
        Job job = Add(request, observer);
        if (!Offer(job))
        {
            _jobs.TryRemove(job.Request.Id, out _);
            throw new ObjectDisposedException(nameof(InMemoryJobQueue), "The queue is shutting down.");
        }

        return new(new JobTicket(job.Request.Id, observer is null ? null : job));
    }

    /// <summary>
    /// Queues a job and runs it at once on the calling thread with <paramref name="executor"/>, leased to
    /// <paramref name="workerId"/>: it is recorded, listed, watched, cancellable and retained like any other
    /// job, but no worker is woken for it. The server does this for calls of functions configured
    /// <see cref="FunctionOptions.Inline"/>. Returns when the executor has finished, or when it first waits
    /// (it then carries on wherever it resumes, and completes the job from there).
    /// </summary>
    public ValueTask<JobTicket> SubmitAndRunAsync(JobRequest request, IJobObserver? observer, IJobExecutor executor, string workerId)
    {
        Job job = Add(request, observer);
        var ticket = new JobTicket(job.Request.Id, observer is null ? null : job);
        if (job.TryLease(workerId, Timeout.InfiniteTimeSpan) is not { } lease)
        {
            return new(ticket); // cancelled (or past its deadline) before it could start: it already has its outcome
        }

        lease.NeverWaits = true; // the receiving thread must not wait for room: it may be the one that makes it

        ValueTask<JobOutcome> running;
        try
        {
            running = executor.ExecuteAsync(lease.Request, lease, lease.CancellationToken);
        }
        catch (Exception e)
        {
            running = new(ExecutorFailed(e)); // executors turn function failures into outcomes: this is a bug in the executor
        }

        if (running.IsCompletedSuccessfully)
        {
            _ = lease.CompleteAsync(running.Result); // completes synchronously
        }
        else
        {
            _ = FinishAsync(lease, running);
        }

        return new(ticket);

        static async Task FinishAsync(JobLease lease, ValueTask<JobOutcome> running)
        {
            JobOutcome outcome;
            try
            {
                outcome = await running.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                outcome = ExecutorFailed(e);
            }

            await lease.CompleteAsync(outcome).ConfigureAwait(false);
        }
    }

    private static JobOutcome ExecutorFailed(Exception e) => JobOutcome.Failure(JobState.Failed, RemoteError.FromException(e, Protocol.ErrorCodes.Internal, ErrorDetail.TypeAndMessage));

    private Job Add(JobRequest request, IJobObserver? observer)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        string id = NewId(Interlocked.Increment(ref _nextId));
        var job = new Job(this, request.WithId(id), observer);
        _jobs[id] = job;
        observer?.OnAccepted(id);
        if (request.Deadline is { } deadline)
        {
            job.ArmDeadline(deadline);
        }

        return job;
    }

    /// <inheritdoc/>
    public ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default)
    {
        if (_jobs.TryGetValue(jobId, out Job? job)) return new(job.Watch(afterSequence, observer));
        (JobInfo? found, byte[]? output) = FindFolded(jobId, withOutput: false);
        if (found is not { } folded) return new((IDisposable?)null);
        observer.OnAccepted(jobId);
        foreach (JobEvent e in FoldedOutput.Read(output))
        {
            if (e.Sequence > afterSequence) observer.OnEvent(e);
        }

        observer.OnEvent(new JobEvent(folded.LastSequence, JobEventKind.Completed, Outcome: JobOutcome.Released(jobId, folded.Function)));
        return new(NoSubscription.Instance);
    }

    /// <inheritdoc/>
    public ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default)
    {
        Trim();
        if (_jobs.TryGetValue(jobId, out Job? job)) return new(job.Info(withOutput));
        return new(FindFolded(jobId, withOutput).Info);
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default)
    {
        Trim();
        query ??= new JobQuery();
        // Both taken under the lock a record folds under: one folding between the two would be listed twice.
        Job[] live;
        List<JobInfo> folded;
        lock (_retentionGate)
        {
            live = [.. _jobs.Values];
            folded = FoldedMatching(query);
        }

        IReadOnlyList<JobInfo> jobs = [.. live
            .Select(j => j.Info(false)) // outside the lock: a job takes its own lock first, then this one, as it finishes
            .Concat(folded)
            .Where(i => query.Matches(i.State, i.Function))
            .OrderByDescending(i => i.CreatedAt)
            .ThenByDescending(i => i.Id, StringComparer.Ordinal)
            .Take(query.Limit)];
        return new(jobs);
    }

    /// <inheritdoc/>
    public ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default)
        => new(_jobs.TryGetValue(jobId, out Job? job) && job.Cancel(deadline: false, message: null));

    /// <inheritdoc/>
    public ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default)
    {
        if (_jobs.TryGetValue(jobId, out Job? job))
        {
            long freed = job.Release();
            if (freed > 0) Interlocked.Add(ref _retainedBytes, -freed);
            // Not yet counted: released from within its own completion (its result sent on the completing thread),
            // which files and folds its record next.
            if (job.Counted && job.Foldable) Fold(job);
        }

        return default;
    }

    /// <inheritdoc/>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))] // a worker waits here once per job: its state is reused, not allocated each time
    public async ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken)
    {
        while (true)
        {
            // A job wakes the one worker it is handed to, never every idle worker (a server has 64).
            if (cancellationToken.IsCancellationRequested) return null; // a worker that stopped taking takes nothing
            Job? job;
            Taker? taker = null;
            bool yieldFirst = false;
            lock (_takeGate)
            {
                // Looked at again under the lock a job is queued under: a stop that came before a job was handed in
                // (between the look above and this lock) must not take that job from the ready queue.
                if (cancellationToken.IsCancellationRequested) return null;
                if (_ready.Count > 0 && Transports.ReplyHandoff.LentForOne)
                {
                    yieldFirst = true; // this thread was lent for one job and has its own response to write
                    job = null;
                }
                else if (!_ready.TryDequeue(out job))
                {
                    if (_closed) return null;
                    taker = new Taker();
                    _takers.Enqueue(taker);
                }
            }

            if (yieldFirst)
            {
                await Task.Yield();
                continue;
            }

            if (taker is not null)
            {
                using CancellationTokenRegistration stop = cancellationToken.UnsafeRegister(static t => ((Taker)t!).TryGive(null), taker);
                job = await taker.Job.ConfigureAwait(false);
                if (job is null) return null; // stopped taking, or the queue closed
                if (cancellationToken.IsCancellationRequested)
                {
                    // Stopped while the job was on its way (handed over before the stop's callback could claim this
                    // taker): not leased yet, so it goes to another worker, or waits for one; the queue closing ends it.
                    if (!Offer(job)) job.ShutDown();
                    return null;
                }
            }

            if (job!.TryLease(workerId, leaseDuration) is { } lease)
            {
                if (leaseDuration != Timeout.InfiniteTimeSpan) EnsureLeaseSweeper(leaseDuration);
                return lease;
            }
        }
    }

    /// <summary>Hands a job to the longest-waiting worker, or queues it for the next; false once the queue has closed.</summary>
    private bool Offer(Job job)
    {
        while (true)
        {
            Taker? taker;
            lock (_takeGate)
            {
                if (_closed) return false;
                if (!_takers.TryDequeue(out taker))
                {
                    _ready.Enqueue(job);
                    return true;
                }
            }

            if (!taker.TryClaim()) continue; // that worker stopped waiting: the next one
            if (!Transports.ReplyHandoff.TryDefer(taker, job)) taker.Complete(job, inline: false);
            return true;
        }
    }

    /// <summary>One worker waiting for a job: given one job, or <see langword="null"/> when it stops waiting or the queue closes.</summary>
    private sealed class Taker : System.Threading.Tasks.Sources.IValueTaskSource<Job?>, Transports.IHeldCompletion
    {
        private System.Threading.Tasks.Sources.ManualResetValueTaskSourceCore<Job?> _core = new() { RunContinuationsAsynchronously = true };
        private int _claimed;

        public ValueTask<Job?> Job => new(this, _core.Version);

        public bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

        /// <summary>Claims and completes at once (the worker's continuation on the thread pool).</summary>
        public void TryGive(Job? job)
        {
            if (TryClaim()) Complete(job, inline: false);
        }

        public void Complete(object? value, bool inline)
        {
            _core.RunContinuationsAsynchronously = !inline;
            _core.SetResult((Job?)value);
        }

        Job? System.Threading.Tasks.Sources.IValueTaskSource<Job?>.GetResult(short token) => _core.GetResult(token);

        System.Threading.Tasks.Sources.ValueTaskSourceStatus System.Threading.Tasks.Sources.IValueTaskSource<Job?>.GetStatus(short token) => _core.GetStatus(token);

        void System.Threading.Tasks.Sources.IValueTaskSource<Job?>.OnCompleted(Action<object?> continuation, object? state, short token, System.Threading.Tasks.Sources.ValueTaskSourceOnCompletedFlags flags)
            => _core.OnCompleted(continuation, state, token, flags);
    }

    private void EnsureLeaseSweeper(TimeSpan leaseDuration)
    {
        if (_leaseSweeper is not null || _disposed) return;
        TimeSpan period = TimeSpan.FromMilliseconds(Math.Clamp(leaseDuration.TotalMilliseconds / 4, 10, 1000));
        var timer = new Timer(static s => ((InMemoryJobQueue)s!).SweepLeases(), this, period, period);
        if (Interlocked.CompareExchange(ref _leaseSweeper, timer, null) is not null) timer.Dispose();
    }

    private void SweepLeases()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        foreach (Job job in _jobs.Values)
        {
            if (job.LeaseLapsed(now))
            {
                Offer(job); // delivered again, to the next worker that asks
            }
        }
    }

    // Called as the job completes, under its lock.
    private void Finished(Job job)
    {
        job.Counted = true;
        Interlocked.Add(ref _retainedBytes, job.BudgetBytes);
        // A result sent as the job completed (in process, a socket that was free) was released before now.
        bool foldable = job.Foldable;
        DateTimeOffset oldest = job.CompletedAt - _options.Retention.MaxAge; // it completed just now
        lock (_retentionGate)
        {
            if ((_ringTail & (SegmentSize - 1)) == 0) AddSegment();
            // Field by field into the slot (cleared when it was last given up): assigning a whole slot copies it
            // through the runtime's bulk write barrier.
            ref RetainedSlot slot = ref Slot(_ringTail);
            job.Position = _ringTail++;
            slot.Job = job;
            slot.CompletedAt = job.CompletedAt;
            if (foldable) FoldLocked(job);
            TrimLocked(oldest);
        }
    }

    /// <summary>The ring's slot at <paramref name="position"/> (between head and tail), under <see cref="_retentionGate"/>.</summary>
    private ref RetainedSlot Slot(long position) => ref _segments[(position >> SegmentShift) & (_segments.Length - 1)]![position & (SegmentSize - 1)];

    /// <summary>Makes room for the segment the tail enters, under <see cref="_retentionGate"/>.</summary>
    private void AddSegment()
    {
        long first = _ringHead >> SegmentShift, next = _ringTail >> SegmentShift;
        if (next - first + 1 > _segments.Length)
        {
            // The directory holds only references to segments: doubling it copies a few thousand at most.
            var larger = new RetainedSlot[]?[_segments.Length * 2];
            for (long n = first; n < next; n++) larger[n & (larger.Length - 1)] = _segments[n & (_segments.Length - 1)];
            _segments = larger;
        }

        _segments[next & (_segments.Length - 1)] = _spareSegment ?? new RetainedSlot[SegmentSize];
        _spareSegment = null;
    }

    /// <summary>
    /// Folds a delivered call's record into its ring slot: it keeps what a status query or an attach reports
    /// (that it succeeded, when, where, for whom, and that its result was delivered) without the job's objects.
    /// </summary>
    private void Fold(Job job)
    {
        lock (_retentionGate) FoldLocked(job);
    }

    /// <summary><see cref="Fold"/>, under <see cref="_retentionGate"/>.</summary>
    private void FoldLocked(Job job)
    {
        long position = job.Position;
        if (position < _ringHead || position >= _ringTail || !TryNumber(job.Request.Id, out long number)) return; // already forgotten
        ref RetainedSlot slot = ref Slot(position);
        if (!ReferenceEquals(slot.Job, job) || !job.TryFold(ref slot.Folded, _names, out long retained)) return;
        slot.Folded.Number = number;
        slot.Job = null;
        IndexAdd(number, position); // before the job leaves the index, so a lookup that misses it finds this
        _jobs.TryRemove(job.Request.Id, out _);
        Interlocked.Add(ref _retainedBytes, FoldedOverheadBytes + FoldedOutput.Cost(slot.Folded.Output) - retained);
    }

    /// <summary>Files folded record <paramref name="number"/> at ring <paramref name="position"/>, under <see cref="_retentionGate"/>.</summary>
    private void IndexAdd(long number, long position)
    {
        long key = number >> IndexShift;
        IndexBlock? block = _lastBlock;
        if (block is null || block.Key != key)
        {
            if (!_foldedIndex.TryGetValue(key, out block))
            {
                block = new IndexBlock(key);
                _foldedIndex.Add(key, block);
            }

            _lastBlock = block;
        }

        ref long entry = ref block.Positions[number & (IndexBlockSize - 1)];
        if (entry == 0)
        {
            block.Count++;
            _foldedCount++;
        }

        entry = position + 1;
    }

    /// <summary>Where folded record <paramref name="number"/> is in the ring, if it is there; under <see cref="_retentionGate"/>.</summary>
    private long? IndexFind(long number)
    {
        long key = number >> IndexShift;
        IndexBlock? block = _lastBlock is { } last && last.Key == key ? last : _foldedIndex.GetValueOrDefault(key);
        long entry = block?.Positions[number & (IndexBlockSize - 1)] ?? 0;
        return entry == 0 ? null : entry - 1;
    }

    /// <summary>Forgets folded record <paramref name="number"/>, and its block when it was the block's last; under <see cref="_retentionGate"/>.</summary>
    private void IndexRemove(long number)
    {
        if (!_foldedIndex.TryGetValue(number >> IndexShift, out IndexBlock? block)) return;
        ref long entry = ref block.Positions[number & (IndexBlockSize - 1)];
        if (entry == 0) return;
        entry = 0;
        _foldedCount--;
        if (--block.Count > 0) return;
        _foldedIndex.Remove(block.Key);
        if (ReferenceEquals(_lastBlock, block)) _lastBlock = null;
    }

    /// <summary>The id of job <paramref name="number"/>: the queue's prefix and the number, made as one string.</summary>
    private string NewId(long number)
    {
        int digits = 1;
        for (long rest = number; rest >= 10; rest /= 10) digits++;
        return string.Create(_idPrefix.Length + digits, (_idPrefix, number), static (span, state) =>
        {
            state._idPrefix.CopyTo(span);
            state.number.TryFormat(span[state._idPrefix.Length..], out _, default, System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    private bool TryNumber(string jobId, out long number)
    {
        number = 0;
        return jobId.StartsWith(_idPrefix, StringComparison.Ordinal)
            && long.TryParse(jobId.AsSpan(_idPrefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out number);
    }

    /// <summary>The folded record of <paramref name="jobId"/>, if there is one, and its recorded output (never changed once folded).</summary>
    private (JobInfo? Info, byte[]? Output) FindFolded(string jobId, bool withOutput)
    {
        if (!TryNumber(jobId, out long number)) return default;
        lock (_retentionGate)
        {
            if (IndexFind(number) is not long position) return default;
            ref RetainedSlot slot = ref Slot(position);
            return (FoldedInfo(ref slot, withOutput), slot.Folded.Output);
        }
    }

    /// <summary>What a folded record reports, under <see cref="_retentionGate"/> (its names are numbers in <see cref="_names"/>).</summary>
    private JobInfo FoldedInfo(ref RetainedSlot slot, bool withOutput = false)
    {
        ref FoldedJob folded = ref slot.Folded;
        return new JobInfo
        {
            Id = _idPrefix + folded.Number.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Function = _names[folded.Function]!,
            Queue = Name,
            State = JobState.Succeeded,
            CreatedAt = folded.CreatedAt,
            StartedAt = folded.StartedAt == default ? null : folded.StartedAt,
            CompletedAt = slot.CompletedAt,
            Deadline = folded.Deadline == default ? null : folded.Deadline,
            Attempts = folded.Attempts,
            Worker = _names[folded.Worker],
            Detached = folded.Detached,
            Owner = _names[folded.Owner],
            LastSequence = folded.LastSequence,
            Output = withOutput ? [.. FoldedOutput.Read(folded.Output).Where(e => JobData.IsConsole(e.Stream)).Select(e => new OutputChunk(e.Stream, e.Text!))] : [],
            Outcome = JobOutcome.Success(ReadOnlyMemory<byte>.Empty, folded.ResultSerialization).WithoutResult(),
            ResultReleased = true,
            RetainedBytes = folded.Output?.Length ?? 0,
        };
    }

    /// <summary>The folded records that match, under <see cref="_retentionGate"/>.</summary>
    private List<JobInfo> FoldedMatching(JobQuery query)
    {
        var found = new List<JobInfo>();
        for (long p = _ringHead; p < _ringTail; p++)
        {
            ref RetainedSlot slot = ref Slot(p);
            if (slot.Job is null && query.Matches(JobState.Succeeded, _names[slot.Folded.Function]!))
            {
                found.Add(FoldedInfo(ref slot));
            }
        }

        return found;
    }

    /// <summary>Forgets finished jobs past the retention age, and the oldest while over the byte budget.</summary>
    private void Trim()
    {
        DateTimeOffset oldest = DateTimeOffset.UtcNow - _options.Retention.MaxAge;
        lock (_retentionGate) TrimLocked(oldest);
    }

    /// <summary><see cref="Trim"/> with records that completed before <paramref name="oldest"/> too old, under <see cref="_retentionGate"/>.</summary>
    private void TrimLocked(DateTimeOffset oldest)
    {
        JobRetention retention = _options.Retention;
        while (_ringHead < _ringTail)
        {
            ref RetainedSlot head = ref Slot(_ringHead);
            if (!(head.CompletedAt < oldest || Volatile.Read(ref _retainedBytes) > retention.MaxBytes)) break;
            if (head.Job is { } job)
            {
                _jobs.TryRemove(job.Request.Id, out _);
                job.Forget();
                Interlocked.Add(ref _retainedBytes, -job.BudgetBytes);
            }
            else
            {
                IndexRemove(head.Folded.Number);
                _names.Release(head.Folded.Function);
                _names.Release(head.Folded.Worker);
                _names.Release(head.Folded.Owner);
                Interlocked.Add(ref _retainedBytes, -(FoldedOverheadBytes + FoldedOutput.Cost(head.Folded.Output)));
            }

            head = default; // nothing kept alive by a slot the ring no longer holds
            if ((++_ringHead & (SegmentSize - 1)) == 0)
            {
                // The head left a segment (every slot of it cleared): it waits to be the tail's next.
                long passed = (_ringHead >> SegmentShift) - 1;
                _spareSegment = _segments[passed & (_segments.Length - 1)];
                _segments[passed & (_segments.Length - 1)] = null;
            }
        }
    }

    /// <summary>Stops handing out jobs; queued jobs end cancelled and running ones have their tokens cancelled.</summary>
    public ValueTask DisposeAsync()
    {
        if (_disposed) return default;
        _disposed = true;
        Taker[] waiting;
        lock (_takeGate)
        {
            _closed = true;
            waiting = [.. _takers];
            _takers.Clear();
        }

        foreach (Taker taker in waiting) taker.TryGive(null);
        _leaseSweeper?.Dispose();
        foreach (Job job in _jobs.Values)
        {
            job.ShutDown();
        }

        return default;
    }

    /// <summary>The ring positions of the folded records of <see cref="IndexBlockSize"/> consecutive job numbers.</summary>
    private sealed class IndexBlock(long key)
    {
        public readonly long Key = key; // the numbers' shared high bits: number >> IndexShift
        public readonly long[] Positions = new long[IndexBlockSize]; // a record's ring position + 1; 0: none folded
        public int Count; // the entries that are not 0
    }

    /// <summary>A slot of the finished ring: a job's record, or (its job null) a folded one.</summary>
    private struct RetainedSlot
    {
        public Job? Job;
        public DateTimeOffset CompletedAt;
        public FoldedJob Folded;
    }

    /// <summary>
    /// A folded record's recorded output in one array: for each piece, its sequence number's step from the one before
    /// (a varint), its stream (a byte), and its text's UTF-8 length (a varint) and bytes. (A lone surrogate, which no
    /// transport carries either, as every one encodes text in UTF-8, becomes U+FFFD.)
    /// </summary>
    private static class FoldedOutput
    {
        /// <summary>What an output array counts against the byte budget: its bytes and the array's own header.</summary>
        public static long Cost(byte[]? output) => output is null ? 0 : output.Length + 24;

        public static byte[]? Write(Queue<JobEvent>? events)
        {
            if (events is not { Count: > 0 }) return null;
            int size = 0;
            long previous = 0;
            foreach (JobEvent e in events)
            {
                int length = Encoding.UTF8.GetByteCount(e.Text ?? "");
                size += VarintSize((ulong)(e.Sequence - previous)) + 1 + VarintSize((ulong)length) + length;
                previous = e.Sequence;
            }

            byte[] output = GC.AllocateUninitializedArray<byte>(size);
            int at = 0;
            previous = 0;
            foreach (JobEvent e in events)
            {
                at += WriteVarint(output.AsSpan(at), (ulong)(e.Sequence - previous));
                previous = e.Sequence;
                output[at++] = (byte)e.Stream;
                int length = Encoding.UTF8.GetByteCount(e.Text ?? "");
                at += WriteVarint(output.AsSpan(at), (ulong)length);
                at += Encoding.UTF8.GetBytes(e.Text ?? "", output.AsSpan(at));
            }

            return output;
        }

        public static List<JobEvent> Read(byte[]? output)
        {
            var events = new List<JobEvent>();
            if (output is null) return events;
            long sequence = 0;
            int at = 0;
            while (at < output.Length)
            {
                sequence += (long)ReadVarint(output, ref at);
                var stream = (OutputStream)output[at++];
                int length = (int)ReadVarint(output, ref at);
                events.Add(new JobEvent(sequence, JobEventKind.Output, stream, Encoding.UTF8.GetString(output, at, length)));
                at += length;
            }

            return events;
        }

        private static int VarintSize(ulong value)
        {
            int size = 1;
            while (value >= 0x80)
            {
                value >>= 7;
                size++;
            }

            return size;
        }

        private static int WriteVarint(Span<byte> target, ulong value)
        {
            int i = 0;
            while (value >= 0x80)
            {
                target[i++] = (byte)(value | 0x80);
                value >>= 7;
            }

            target[i++] = (byte)value;
            return i;
        }

        private static ulong ReadVarint(byte[] source, ref int at)
        {
            ulong value = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = source[at++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
        }
    }

    /// <summary>
    /// The names folded records share (functions, workers, owners), each by a number, counted: a name is forgotten
    /// when the last record that holds it is. Under <see cref="_retentionGate"/>. Number 0 is no name.
    /// </summary>
    private sealed class NameTable
    {
        private readonly List<string?> _names = [null];
        private readonly List<int> _holders = [0];
        private readonly Dictionary<string, int> _numbers = new(StringComparer.Ordinal);
        private readonly Stack<int> _free = new();

        public string? this[int number] => _names[number];

        /// <summary>How many names are held (for tests).</summary>
        public int Count => _numbers.Count;

        /// <summary><paramref name="name"/>'s number, held once more.</summary>
        public int Hold(string? name)
        {
            if (name is null) return 0;
            if (!_numbers.TryGetValue(name, out int number))
            {
                if (_free.TryPop(out number))
                {
                    _names[number] = name;
                }
                else
                {
                    number = _names.Count;
                    _names.Add(name);
                    _holders.Add(0);
                }

                _numbers.Add(name, number);
            }

            _holders[number]++;
            return number;
        }

        /// <summary>Lets go of <paramref name="number"/> once; the name goes when nothing holds it.</summary>
        public void Release(int number)
        {
            if (number == 0 || --_holders[number] > 0) return;
            _numbers.Remove(_names[number]!);
            _names[number] = null;
            _free.Push(number);
        }
    }

    /// <summary>
    /// What a delivered call's record keeps once folded: its names as numbers in the queue's <see cref="NameTable"/>,
    /// and what it printed as one array of bytes, so the collector has nothing to follow in it but that one array (a
    /// busy server keeps a million of them).
    /// </summary>
    private struct FoldedJob
    {
        public byte[]? Output; // its recorded output (FoldedOutput), null when it recorded none
        public long Number;
        public int Function;
        public DateTimeOffset CreatedAt;
        public DateTimeOffset StartedAt; // default: never started (cannot happen for a folded job, kept for the info)
        public DateTimeOffset Deadline; // default: none
        public int Attempts;
        public int Worker;
        public int Owner;
        public bool Detached;
        public long LastSequence;
        public Serialization ResultSerialization;
    }

    /// <summary>One job: its request, state, recorded events and observers. Everything under its own lock.</summary>
    private sealed class Job(InMemoryJobQueue queue, JobRequest request, IJobObserver? observer) : IDisposable
    {
        // Dropped once the job has finished, with everything else a finished record does not need: a busy server
        // keeps hundreds of thousands of finished calls for status queries, and the collector walks them all.
        private CancellationTokenSource? _cancel = new();
        private IJobObserver? _observer = observer;
        private List<IJobObserver>? _watchers;
        private Queue<JobEvent>? _events;
        private long _recordedOutput; // UTF-8 bytes, for MaxOutputBytesPerJob and what status reports
        private long _outputMemory; // what the recorded output takes of the heap (OutputPieceBytes), for the byte budget
        private long _sequence;
        private JobState _state = JobState.Queued;
        private int _attempts;
        private string? _worker;
        private DateTimeOffset? _started;
        private Lease? _lease;
        private JobOutcome? _outcome;
        private JobOutcome? _cancelledWhileRunning; // the outcome a cancel asked for while it ran: handed back or lapsed, it ends so
        private bool _released;
        private bool _isFolded;
        private Timer? _deadlineTimer;

        public JobRequest Request { get; private set; } = request;

        public DateTimeOffset CompletedAt { get; private set; }

        /// <summary>Its place in the queue's ring of finished jobs.</summary>
        public long Position { get; set; }

        /// <summary>Whether the queue has counted its record against the byte budget (set under its lock, as it completes).</summary>
        public bool Counted { get; set; }

        /// <summary>
        /// Whether its record can be folded: it succeeded, its result was delivered and released, nobody watches it,
        /// and it printed at most <see cref="FoldedOutputLimit"/> bytes (in UTF-8), which are folded with it.
        /// </summary>
        public bool Foldable
        {
            get
            {
                lock (this) return FoldableLocked;
            }
        }

        private bool FoldableLocked => _released && _state == JobState.Succeeded && _outcome?.Error is null && _watchers is null && _recordedOutput <= FoldedOutputLimit;

        /// <summary>Writes what the folded record keeps into <paramref name="folded"/> (a ring slot's, left untouched when false), field by field.</summary>
        public bool TryFold(ref FoldedJob folded, NameTable names, out long retained)
        {
            lock (this)
            {
                retained = BudgetBytes;
                if (!FoldableLocked) return false;
                _isFolded = true;
                folded.Function = names.Hold(Request.Function);
                folded.CreatedAt = Request.CreatedAt;
                folded.StartedAt = _started ?? default;
                folded.Deadline = Request.Deadline ?? default;
                folded.Attempts = _attempts;
                folded.Worker = names.Hold(_worker);
                folded.Owner = names.Hold(Request.Caller?.Name);
                folded.Detached = Request.Detached;
                folded.LastSequence = _sequence;
                folded.ResultSerialization = _outcome!.ResultSerialization;
                folded.Output = FoldedOutput.Write(_events); // the events stay: someone may hold this job still, to read or watch it
                return true;
            }
        }

        public long RetainedBytes { get; private set; }

        /// <summary>
        /// What this finished record counts against the byte budget: its overhead, its result, and its output as the heap
        /// holds it (two bytes a character and each piece's event and string), not as status reports it (characters).
        /// Fixed once it has finished but for the result's release, which the queue gives back itself.
        /// </summary>
        public long BudgetBytes => RecordOverheadBytes + RetainedBytes - _recordedOutput + _outputMemory;

        /// <summary>What a recorded piece of output of <paramref name="text"/> takes of the heap: its string and its place in the queue of events.</summary>
        private static long OutputPieceBytes(string text) => 2L * text.Length + 64;

        public void ArmDeadline(DateTimeOffset deadline)
        {
            TimeSpan due = deadline - DateTimeOffset.UtcNow;
            if (due <= TimeSpan.Zero)
            {
                Cancel(deadline: true, message: null);
                return;
            }

            // Past the deadline a queued job ends at once; a running one's token fires (the executor reports the timeout).
            _deadlineTimer = new Timer(static s => ((Job)s!).Cancel(deadline: true, message: null), this, due, Timeout.InfiniteTimeSpan);
        }

        public Lease? TryLease(string workerId, TimeSpan duration)
        {
            lock (this)
            {
                if (_state != JobState.Queued) return null;
                if (Request.Deadline is { } deadline && deadline <= DateTimeOffset.UtcNow)
                {
                    CompleteLocked(JobOutcome.DeadlinePassed(Request, whileQueued: true));
                    return null;
                }

                _state = JobState.Running;
                _attempts++;
                _worker = workerId;
                _started ??= DateTimeOffset.UtcNow;
                _lease = new Lease(this, Request, _attempts, duration);
                if (_attempts > 1)
                {
                    DropEarlierDataLocked();
                    Publish(new JobEvent(++_sequence, JobEventKind.Started, Attempt: _attempts));
                }

                return _lease;
            }
        }

        // Delivered again: the items and progress an earlier attempt recorded are not this run's (it makes its own from
        // the start), so a reader from the first event gets one run's; the console output stays, for what happened.
        private void DropEarlierDataLocked()
        {
            if (_events is null || _events.All(e => e.Kind != JobEventKind.Output || JobData.IsConsole(e.Stream))) return;
            var kept = new Queue<JobEvent>(_events.Count);
            foreach (JobEvent e in _events)
            {
                if (e.Kind == JobEventKind.Output && !JobData.IsConsole(e.Stream))
                {
                    _recordedOutput -= Encoding.UTF8.GetByteCount(e.Text ?? "");
                    _outputMemory -= OutputPieceBytes(e.Text ?? "");
                }
                else
                {
                    kept.Enqueue(e);
                }
            }

            _events = kept;
        }

        public bool LeaseLapsed(DateTimeOffset now)
        {
            lock (this)
            {
                if (_state != JobState.Running || _lease is not { } lease || lease.ExpiresAt > now) return false;
                lease.Lose();
                _lease = null;
                if (_cancelledWhileRunning is { } cancelled)
                {
                    CompleteLocked(cancelled); // its caller was told it is cancelled: it does not run again
                    return false;
                }

                _state = JobState.Queued;
                return true;
            }
        }

        public void Abandon(Lease lease)
        {
            lock (this)
            {
                if (_lease != lease) return;
                _lease = null;
                if (_cancelledWhileRunning is { } cancelled)
                {
                    CompleteLocked(cancelled); // its caller was told it is cancelled: it does not run again elsewhere
                    return;
                }

                _state = JobState.Queued;
                if (!queue.Offer(this))
                {
                    CompleteLocked(JobOutcome.CancelledBy(Request, whileQueued: false) with { Error = new RemoteError { Code = Protocol.ErrorCodes.Cancelled, Message = "The server is shutting down." } });
                }
            }
        }

        public bool Renew(Lease lease)
        {
            lock (this)
            {
                if (_lease != lease) return false;
                lease.Extend();
                return true;
            }
        }

        /// <summary>Waits while this job's caller (its relay) has too much of its output waiting to be read.</summary>
        public void WaitForRoom(Lease lease, CancellationToken cancellationToken)
        {
            IJobObserver? observer;
            lock (this)
            {
                if (_lease != lease) return;
                observer = _observer;
            }

            (observer as IOutputBackpressure)?.WaitForRoom(cancellationToken); // outside the lock: a cancel must get in
        }

        public void Write(Lease lease, OutputStream stream, string text)
        {
            lock (this)
            {
                if (_lease != lease) return;
                var e = new JobEvent(++_sequence, JobEventKind.Output, stream, text);
                _events ??= new Queue<JobEvent>();
                _events.Enqueue(e);
                _recordedOutput += Encoding.UTF8.GetByteCount(text);
                _outputMemory += OutputPieceBytes(text);
                while (_recordedOutput > queue._options.Retention.MaxOutputBytesPerJob && _events.TryDequeue(out JobEvent dropped))
                {
                    _recordedOutput -= Encoding.UTF8.GetByteCount(dropped.Text ?? "");
                    _outputMemory -= OutputPieceBytes(dropped.Text ?? "");
                }

                Publish(e);
            }
        }

        public bool Complete(Lease lease, JobOutcome outcome)
        {
            lock (this)
            {
                if (_lease != lease) return false;
                CompleteLocked(outcome);
            }

            return true;
        }

        private void CompleteLocked(JobOutcome outcome)
        {
            if (_state.IsFinished()) return;
            _outcome = outcome;
            _state = outcome.State;
            _lease = null;
            CompletedAt = DateTimeOffset.UtcNow;
            Request.ArgumentsPool?.Release(); // the queue's hold; a function still running keeps its own
            RetainedBytes = _recordedOutput + outcome.Result.Length;
            Publish(new JobEvent(++_sequence, JobEventKind.Completed, Outcome: outcome));
            _observer = null;
            _watchers = null;
            _deadlineTimer?.Dispose();
            _deadlineTimer = null;
            _cancel?.Dispose();
            _cancel = null;
            queue.Finished(this);
            if (!_isFolded)
            {
                // A record kept whole does not keep the arguments (a folded one, the usual delivered call, kept nothing of the job).
                Request = Request with { Arguments = default, ArgumentsPool = null };
            }
        }

        private void Publish(in JobEvent e)
        {
            _observer?.OnEvent(e);
            if (_watchers is { } watchers)
            {
                foreach (IJobObserver w in watchers) w.OnEvent(e);
            }
        }

        /// <summary>
        /// Ends the job as the queue closes: one that never started is <c>unavailable</c> (it did not run, and can be made
        /// again once the server is back); one that is running is cancelled.
        /// </summary>
        public void ShutDown()
        {
            lock (this)
            {
                if (_state == JobState.Queued)
                {
                    CompleteLocked(JobOutcome.CancelledBy(Request, whileQueued: true) with
                    {
                        Error = new RemoteError
                        {
                            Code = Protocol.ErrorCodes.Unavailable,
                            Message = $"The server is shutting down: {Request.Function} was queued but never started, and did not run. Make it again once the server is back (a client that reconnects waits for it).",
                        },
                    });
                    return;
                }
            }

            Cancel(deadline: false, message: "The server is shutting down.");
        }

        public bool Cancel(bool deadline, string? message)
        {
            Lease? running;
            lock (this)
            {
                if (_state.IsFinished()) return false;
                if (_state == JobState.Queued)
                {
                    JobOutcome outcome = deadline ? JobOutcome.DeadlinePassed(Request, whileQueued: true) : JobOutcome.CancelledBy(Request, whileQueued: true);
                    CompleteLocked(message is null ? outcome : outcome with { Error = outcome.Error! with { Message = message } });
                    return true;
                }

                running = _lease;
                JobOutcome asked = deadline ? JobOutcome.DeadlinePassed(Request, whileQueued: false) : JobOutcome.CancelledBy(Request, whileQueued: false);
                _cancelledWhileRunning ??= message is null ? asked : asked with { Error = asked.Error! with { Message = message } };
            }

            // Outside the lock: the token's callbacks run the function's own cancellation code.
            running?.Cancel();
            return true;
        }

        public long Release()
        {
            lock (this)
            {
                if (!_state.IsFinished() || _released) return 0;
                _released = true;
                long freed = _outcome!.Result.Length;
                _outcome.ResultPool?.Release(); // the queue's hold; a message still being sent holds its own
                if (freed > 0 || _outcome.ResultPool is not null) _outcome = _outcome.WithoutResult();
                RetainedBytes -= freed;
                // Released while it was completing (its result sent on the completing thread), before the queue
                // counted its bytes: the queue counts what is left, and there is nothing to give back.
                return Counted ? freed : 0;
            }
        }

        /// <summary>Evicted by the retention rules: a result still held goes back to its pool.</summary>
        public void Forget()
        {
            lock (this)
            {
                if (_released || _outcome?.ResultPool is not { } pool) return;
                _released = true;
                pool.Release();
                _outcome = _outcome.WithoutResult();
            }
        }

        public IDisposable Watch(long afterSequence, IJobObserver watcher)
        {
            lock (this)
            {
                watcher.OnAccepted(Request.Id);
                if (_events is not null)
                {
                    foreach (JobEvent e in _events)
                    {
                        if (e.Sequence > afterSequence) watcher.OnEvent(e);
                    }
                }

                if (_state.IsFinished())
                {
                    watcher.OnEvent(new JobEvent(_sequence, JobEventKind.Completed, Outcome: _released && _outcome!.Error is null ? JobOutcome.Released(Request) : _outcome));
                    return NoSubscription.Instance;
                }

                (_watchers ??= []).Add(watcher);
                return new Unwatch(this, watcher);
            }
        }

        public void Unsubscribe(IJobObserver watcher)
        {
            lock (this) _watchers?.Remove(watcher);
        }

        // The submitter's subscription is the job itself: no allocation on the call path.
        public void Dispose()
        {
            lock (this) _observer = null;
        }

        public JobInfo Info(bool withOutput)
        {
            lock (this)
            {
                return new JobInfo
                {
                    Id = Request.Id,
                    Function = Request.Function,
                    Queue = queue.Name,
                    State = _state,
                    CreatedAt = Request.CreatedAt,
                    StartedAt = _started,
                    CompletedAt = _state.IsFinished() ? CompletedAt : null,
                    Deadline = Request.Deadline,
                    Attempts = _attempts,
                    Worker = _worker,
                    Detached = Request.Detached,
                    Owner = Request.Caller?.Name,
                    LastSequence = _sequence,
                    Output = withOutput && _events is not null ? [.. _events.Where(e => e.Kind == JobEventKind.Output && JobData.IsConsole(e.Stream)).Select(e => new OutputChunk(e.Stream, e.Text!))] : [],
                    Outcome = _outcome?.Detached(), // whoever asked may keep it: not a view into pooled arrays that go back on release
                    ResultReleased = _released,
                    RetainedBytes = _state.IsFinished() ? RetainedBytes : Request.Arguments.Length + _recordedOutput,
                };
            }
        }

        public CancellationToken Token => (Volatile.Read(ref _cancel) ?? throw new ObjectDisposedException(nameof(Job), "The job has finished.")).Token;

        public void CancelToken()
        {
            try
            {
                Volatile.Read(ref _cancel)?.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Finished meanwhile.
            }
        }
    }

    private sealed class Lease : JobLease, IOutputBackpressure
    {
        private readonly Job _job;
        private readonly TimeSpan _duration;
        private readonly CancellationTokenSource? _own;

        public Lease(Job job, JobRequest request, int attempt, TimeSpan duration)
            : this(job, request, attempt, duration, duration == Timeout.InfiniteTimeSpan ? null : CancellationTokenSource.CreateLinkedTokenSource(job.Token))
        {
        }

        private Lease(Job job, JobRequest request, int attempt, TimeSpan duration, CancellationTokenSource? own)
            : base(request, attempt, own?.Token ?? job.Token)
        {
            _job = job;
            _duration = duration;
            _own = own;
            Extend();
        }

        public DateTimeOffset ExpiresAt { get; private set; }

        public override TimeSpan? RenewEvery => _own is null ? null : _duration / 3;

        public void Extend() => ExpiresAt = _own is null ? DateTimeOffset.MaxValue : DateTimeOffset.UtcNow + _duration;

        public void Lose()
        {
            try
            {
                _own?.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        public void Cancel()
        {
            if (_own is not null) Lose();
            else _job.CancelToken();
        }

        public override void Write(OutputStream stream, string text) => _job.Write(this, stream, text);

        /// <summary>Set for a job run on the thread that received it, which must never wait for its own reader.</summary>
        public bool NeverWaits { get; set; }

        public void WaitForRoom(CancellationToken cancellationToken)
        {
            if (!NeverWaits) _job.WaitForRoom(this, cancellationToken);
        }

        public override ValueTask<bool> RenewAsync(CancellationToken cancellationToken = default) => new(_job.Renew(this));

        public override ValueTask AbandonAsync(CancellationToken cancellationToken = default)
        {
            _job.Abandon(this);
            return default;
        }

        public override ValueTask<bool> CompleteAsync(JobOutcome outcome, CancellationToken cancellationToken = default)
        {
            bool done = _job.Complete(this, outcome);
            _own?.Dispose();
            return new(done);
        }
    }

    private sealed class Unwatch(Job job, IJobObserver watcher) : IDisposable
    {
        public void Dispose() => job.Unsubscribe(watcher);
    }

    private sealed class NoSubscription : IDisposable
    {
        public static readonly NoSubscription Instance = new();

        public void Dispose()
        {
        }
    }
}
