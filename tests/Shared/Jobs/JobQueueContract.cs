using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.Jobs;

/// <summary>
/// The promises every job queue keeps, whatever stores its jobs. Each queue's test class derives
/// from this (durable ones from <see cref="DurableJobQueueContract"/>) and says how to open a queue
/// on a store of its own.
/// </summary>
public abstract class JobQueueContract : IAsyncLifetime
{
    private readonly List<IJobQueue> _opened = [];

    protected static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    /// <summary>Opens a queue on this test's store: every call opens the same store again.</summary>
    protected abstract Task<IJobQueue> CreateAsync(JobRetention retention);

    protected async Task<IJobQueue> OpenAsync(JobRetention? retention = null)
    {
        IJobQueue queue = await CreateAsync(retention ?? new JobRetention());
        lock (_opened) _opened.Add(queue);
        return queue;
    }

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (IJobQueue q in _opened) await q.DisposeAsync();
    }

    protected static JobRequest Request(string function = "f", byte[]? args = null, DateTimeOffset? deadline = null, bool detached = false)
        => new() { Function = function, Arguments = args ?? [0x90], Deadline = deadline, Detached = detached };

    protected static async Task<JobLease> TakeAsync(IJobQueue queue, TimeSpan? lease = null, string worker = "w1")
    {
        using var timeout = new CancellationTokenSource(Patience);
        return await queue.TakeAsync(worker, lease ?? TimeSpan.FromSeconds(30), timeout.Token) ?? throw new InvalidOperationException("The queue is shutting down");
    }

    protected static async Task<JobLease?> TakeNothingAsync(IJobQueue queue, TimeSpan wait, TimeSpan? lease = null)
    {
        using var timeout = new CancellationTokenSource(wait);
        return await queue.TakeAsync("idle", lease ?? TimeSpan.FromSeconds(30), timeout.Token);
    }

    protected static JobOutcome Ok(byte[] result) => JobOutcome.Success(result, Serialization.MessagePack);

    [Fact]
    public async Task OutputIsDeliveredInOrderAndBeforeTheOutcome()
    {
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await queue.SubmitAsync(Request(), seen);
        Assert.Equal(ticket.JobId, seen.AcceptedId);

        JobLease lease = await TakeAsync(queue);
        Assert.Equal(ticket.JobId, lease.Request.Id);
        Assert.Equal(1, lease.Attempt);
        for (int i = 0; i < 100; i++) lease.Write(i % 2 == 0 ? OutputStream.Stdout : OutputStream.Stderr, $"line {i}\n");
        Assert.True(await lease.CompleteAsync(Ok([0x2a])));

        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.Succeeded, done.Outcome!.State);
        Assert.Equal(new byte[] { 0x2a }, done.Outcome.Result.ToArray());
        JobEvent[] events = seen.Snapshot();
        Assert.Equal(Enumerable.Range(0, 100).Select(i => $"line {i}\n"), events.Where(e => e.Kind == JobEventKind.Output).Select(e => e.Text));
        Assert.Equal(OutputStream.Stderr, events[1].Stream);
        Assert.Equal(JobEventKind.Completed, events[^1].Kind);
        Assert.Equal(events.Select(e => e.Sequence).Order(), events.Select(e => e.Sequence)); // in order
        Assert.Equal(events.Length, events.Select(e => e.Sequence).Distinct().Count());
    }

    [Fact]
    public async Task AWatcherGetsTheRecordedEventsAfterItsPositionThenTheRestLive()
    {
        IJobQueue queue = await OpenAsync();
        JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
        JobLease lease = await TakeAsync(queue);
        lease.Write(OutputStream.Stdout, "one\n");
        lease.Write(OutputStream.Stdout, "two\n");
        lease.Write(OutputStream.Stdout, "three\n");
        long first = await WaitForSequenceAsync(queue, ticket.JobId, 3);

        var late = new Recorder();
        using IDisposable? watching = await queue.WatchAsync(ticket.JobId, first - 2, late);
        Assert.NotNull(watching);
        await late.WaitForOutputAsync(2);
        Assert.Equal(["two\n", "three\n"], late.OutputTexts());

        lease.Write(OutputStream.Stdout, "four\n");
        Assert.True(await lease.CompleteAsync(Ok([0x01])));
        JobEvent done = await late.Completed.Task.WaitAsync(Patience);
        Assert.Equal(["two\n", "three\n", "four\n"], late.OutputTexts());
        Assert.Equal(new byte[] { 0x01 }, done.Outcome!.Result.ToArray());

        // Watching a finished job replays everything and the outcome at once.
        var after = new Recorder();
        await queue.WatchAsync(ticket.JobId, 0, after);
        await after.Completed.Task.WaitAsync(Patience);
        Assert.Equal(["one\n", "two\n", "three\n", "four\n"], after.OutputTexts());
        Assert.Null(await queue.WatchAsync("no-such-job", 0, new Recorder()));
    }

    [Fact]
    public async Task AJobCancelledWhileQueuedNeverRunsAndEndsCancelled()
    {
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await queue.SubmitAsync(Request(), seen);
        Assert.True(await queue.CancelAsync(ticket.JobId));

        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.Cancelled, done.Outcome!.State);
        Assert.Equal(ErrorCodes.Cancelled, done.Outcome.Error!.Code);
        Assert.Null(await TakeNothingAsync(queue, TimeSpan.FromMilliseconds(500)));
        Assert.Equal(JobState.Cancelled, (await queue.GetAsync(ticket.JobId))!.State);
        Assert.False(await queue.CancelAsync(ticket.JobId)); // already finished
        Assert.False(await queue.CancelAsync("no-such-job"));
    }

    [Fact]
    public async Task CancellingARunningJobFiresItsWorkersToken()
    {
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await queue.SubmitAsync(Request(), seen);
        JobLease lease = await TakeAsync(queue);
        Assert.Equal(JobState.Running, (await queue.GetAsync(ticket.JobId))!.State);

        var fired = new TaskCompletionSource();
        lease.CancellationToken.Register(() => fired.TrySetResult());
        Assert.True(await queue.CancelAsync(ticket.JobId));
        await fired.Task.WaitAsync(Patience);
        Assert.True(await lease.CompleteAsync(JobOutcome.CancelledBy(lease.Request, whileQueued: false)));
        Assert.Equal(JobState.Cancelled, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
    }

    [Fact]
    public async Task ARunningJobCancelledAndThenHandedBackEndsCancelledAndRunsNoMore()
    {
        // A worker that stops hands its running jobs back; one whose cancel it had been told of, but which did not
        // end in time, must not run again elsewhere: the caller was told it is cancelled.
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await queue.SubmitAsync(Request(), seen);
        JobLease lease = await TakeAsync(queue);
        Assert.True(await queue.CancelAsync(ticket.JobId));
        await lease.AbandonAsync();

        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.Cancelled, done.Outcome!.State);
        Assert.Equal(ErrorCodes.Cancelled, done.Outcome.Error!.Code);
        Assert.Null(await TakeNothingAsync(queue, TimeSpan.FromMilliseconds(500)));
        JobInfo info = (await queue.GetAsync(ticket.JobId))!;
        Assert.Equal(JobState.Cancelled, info.State);
        Assert.Equal(1, info.Attempts);
    }

    [Fact]
    public async Task ARunningJobCancelledWhoseLeaseThenLapsesEndsCancelledAndRunsNoMore()
    {
        // The worker told of the cancel dies before it ends the job: the job is not delivered again.
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await queue.SubmitAsync(Request(), seen);
        JobLease lease = await TakeAsync(queue, TimeSpan.FromMilliseconds(300));
        Assert.True(await queue.CancelAsync(ticket.JobId));
        await Task.Delay(500); // the lease lapses

        Assert.Null(await TakeNothingAsync(queue, TimeSpan.FromMilliseconds(700), TimeSpan.FromMilliseconds(300)));
        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.Cancelled, done.Outcome!.State);
        Assert.Equal(1, (await queue.GetAsync(ticket.JobId))!.Attempts);
        Assert.False(await lease.CompleteAsync(Ok([1]))); // the outcome is the cancel's
        Assert.DoesNotContain(seen.Snapshot(), e => e.Kind == JobEventKind.Started);
    }

    [Fact]
    public async Task ALapsedLeaseIsDeliveredAgainAndOnlyTheCurrentLeaseCompletes()
    {
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await queue.SubmitAsync(Request(), seen);
        JobLease first = await TakeAsync(queue, TimeSpan.FromMilliseconds(400), "dies");
        first.Write(OutputStream.Stdout, "from the first attempt\n");

        // The first worker never renews: its lease lapses and the job is delivered again.
        JobLease second = await TakeAsync(queue, TimeSpan.FromSeconds(30), "lives");
        Assert.Equal(ticket.JobId, second.Request.Id);
        Assert.Equal(2, second.Attempt);
        Assert.False(await first.RenewAsync());
        Assert.False(await first.CompleteAsync(Ok([0x01])));
        second.Write(OutputStream.Stdout, "from the second attempt\n");
        Assert.True(await second.CompleteAsync(Ok([0x02])));
        Assert.False(await second.CompleteAsync(Ok([0x03])));

        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        await Task.Delay(300); // nothing more may follow the outcome
        JobEvent[] events = seen.Snapshot();
        Assert.Single(events, e => e.Kind == JobEventKind.Completed);
        Assert.Equal(new byte[] { 0x02 }, done.Outcome!.Result.ToArray());
        Assert.Contains(events, e => e.Kind == JobEventKind.Started && e.Attempt == 2);
        JobInfo info = (await queue.GetAsync(ticket.JobId))!;
        Assert.Equal(2, info.Attempts);
        Assert.Equal("lives", info.Worker);
    }

    [Fact]
    public async Task AJobDeliveredAgainKeepsItsLastAttemptsItemsAndProgressAndAllItsConsoleOutput()
    {
        IJobQueue queue = await OpenAsync();
        JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
        JobLease first = await TakeAsync(queue, TimeSpan.FromMilliseconds(400), "dies");
        string Items(byte n) => JobData.Encode(Serialization.MessagePack, [0x91, n]); // [n]
        first.Write(OutputStream.Stdout, "first attempt\n");
        first.Write(JobData.Items, Items(1));
        first.Write(JobData.Progress, JobData.Encode(Serialization.MessagePack, [0x07]));
        first.Write(JobData.Items, Items(2));

        // The first worker never renews: the job is delivered again, and its second run makes its items from the start.
        JobLease second = await TakeAsync(queue, TimeSpan.FromSeconds(30), "lives");
        Assert.Equal(2, second.Attempt);
        second.Write(OutputStream.Stdout, "second attempt\n");
        second.Write(JobData.Items, Items(9));
        Assert.True(await second.CompleteAsync(Ok([0x01])));

        var attach = new Recorder();
        await queue.WatchAsync(ticket.JobId, 0, attach);
        await attach.Completed.Task.WaitAsync(Patience);
        JobEvent[] recorded = attach.Snapshot().Where(e => e.Kind == JobEventKind.Output).ToArray();
        Assert.Equal(["first attempt\n", "second attempt\n"], recorded.Where(e => JobData.IsConsole(e.Stream)).Select(e => e.Text));
        Assert.Equal([Items(9)], recorded.Where(e => !JobData.IsConsole(e.Stream)).Select(e => e.Text));
        // What the record keeps is what status counts.
        long kept = recorded.Sum(e => (long)System.Text.Encoding.UTF8.GetByteCount(e.Text!));
        Assert.Equal(kept + 1, (await queue.GetAsync(ticket.JobId))!.RetainedBytes);
    }

    [Fact]
    public async Task RenewingALeaseKeepsTheJobFromBeingDeliveredAgain()
    {
        IJobQueue queue = await OpenAsync();
        JobTicket ticket = await queue.SubmitAsync(Request());
        JobLease lease = await TakeAsync(queue, TimeSpan.FromSeconds(2));
        Task<JobLease?> rival = TakeNothingAsync(queue, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(2));
        for (int i = 0; i < 10; i++)
        {
            await Task.Delay(400); // ten renewals span twice the lease
            Assert.True(await lease.RenewAsync());
        }

        Assert.Null(await rival);
        Assert.True(await lease.CompleteAsync(Ok([0xc0])));
        Assert.Equal(1, (await queue.GetAsync(ticket.JobId))!.Attempts);
    }

    [Fact]
    public async Task AQueuedJobPastItsDeadlineTimesOutWithoutRunning()
    {
        IJobQueue queue = await OpenAsync();
        var seen = new Recorder();
        await queue.SubmitAsync(Request(deadline: DateTimeOffset.UtcNow.AddMilliseconds(300)), seen);
        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.TimedOut, done.Outcome!.State);
        Assert.Equal(ErrorCodes.Timeout, done.Outcome.Error!.Code);
        Assert.Contains("never ran", done.Outcome.Error.Message);
        Assert.Null(await TakeNothingAsync(queue, TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public async Task TakeWaitsForAJobSubmittedLater()
    {
        IJobQueue queue = await OpenAsync();
        Task<JobLease> waiting = TakeAsync(queue);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        JobTicket ticket = await queue.SubmitAsync(Request("later"));
        JobLease lease = await waiting.WaitAsync(Patience);
        Assert.Equal(ticket.JobId, lease.Request.Id);
        Assert.Equal("later", lease.Request.Function);
        Assert.True(await lease.CompleteAsync(Ok([0xc0])));
    }

    [Fact]
    public async Task AFinishedJobReleasesItsArgumentsAtOnceAndItsResultWhenReleased()
    {
        IJobQueue queue = await OpenAsync();
        byte[] args = new byte[100_000];
        JobTicket ticket = await queue.SubmitAsync(Request(args: args));
        Assert.True((await queue.GetAsync(ticket.JobId))!.RetainedBytes >= args.Length);

        JobLease lease = await TakeAsync(queue);
        Assert.Equal(args.Length, lease.Request.Arguments.Length);
        lease.Write(OutputStream.Stdout, "0123456789");
        Assert.True(await lease.CompleteAsync(Ok(new byte[5000])));
        JobInfo done = (await queue.GetAsync(ticket.JobId))!;
        Assert.InRange(done.RetainedBytes, 5000, 5000 + 100); // the result and the output; the arguments are gone

        await queue.ReleaseAsync(ticket.JobId);
        JobInfo released = (await queue.GetAsync(ticket.JobId))!;
        Assert.True(released.ResultReleased);
        Assert.InRange(released.RetainedBytes, 0, 100);

        // A watcher that comes after the release learns why there is no result.
        var late = new Recorder();
        await queue.WatchAsync(ticket.JobId, 0, late);
        JobEvent outcome = await late.Completed.Task.WaitAsync(Patience);
        Assert.Equal(ErrorCodes.NotFound, outcome.Outcome!.Error!.Code);
        Assert.Contains("released", outcome.Outcome.Error.Message);
    }

    [Fact]
    public async Task AJobsRecordedOutputIsCappedInUtf8BytesTheOldestDroppedFirst()
    {
        // Twenty pieces of 32 characters, 61 bytes in UTF-8 each ("é" takes two): 1,220 bytes in 640 characters. A cap
        // of 1,000 bytes keeps the last sixteen (976 bytes); counted in characters, all twenty would fit.
        IJobQueue queue = await OpenAsync(new JobRetention { MaxOutputBytesPerJob = 1000 });
        JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
        JobLease lease = await TakeAsync(queue);
        string[] pieces = [.. Enumerable.Range(0, 20).Select(i => $"{i:00}" + new string('é', 29) + "\n")];
        foreach (string piece in pieces) lease.Write(OutputStream.Stdout, piece);
        Assert.True(await lease.CompleteAsync(Ok(new byte[10])));

        var attach = new Recorder();
        await queue.WatchAsync(ticket.JobId, 0, attach);
        await attach.Completed.Task.WaitAsync(Patience);
        Assert.Equal(pieces[4..], attach.OutputTexts());
        // What status reports counts the output as kept, in bytes, with the result.
        Assert.Equal(16 * 61 + 10, (await queue.GetAsync(ticket.JobId))!.RetainedBytes);
    }

    [Fact]
    public async Task AWorkerThatStoppedTakingTakesNothingEvenWithAJobWaiting()
    {
        // A worker stopping cancels its slots' token; a slot that asks only after that (late to start, or just
        // back from handing a job over) must not take the job another worker will run.
        IJobQueue queue = await OpenAsync();
        JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
        using var stopped = new CancellationTokenSource();
        stopped.Cancel();
        Assert.Null(await queue.TakeAsync("w1", TimeSpan.FromSeconds(30), stopped.Token).AsTask().WaitAsync(Patience));
        JobInfo info = (await queue.GetAsync(ticket.JobId))!;
        Assert.Equal(JobState.Queued, info.State);
        Assert.Equal(0, info.Attempts);
        Assert.Equal(ticket.JobId, (await TakeAsync(queue)).Request.Id);
    }

    [Fact]
    public async Task AWaitingWorkerThatStopsTakesNothingHandedInAfterItsStop()
    {
        // A worker stopping cancels its slots' token; a slot that had just begun to wait takes nothing that comes
        // after. (A server on a durable queue hands its running jobs back right after the stop: a slot that took one
        // would run it under a cancelled token and hand it back again, an attempt lost.) Races a waiting take against
        // a stop followed at once by a job; no round may take it, and the job goes to the next worker unleased.
        IJobQueue queue = await OpenAsync();
        for (int round = 0; round < 300; round++)
        {
            using var stop = new CancellationTokenSource();
            using var ready = new ManualResetEventSlim();
            Task<JobLease?> waiting = Task.Run(async () =>
            {
                ready.Set();
                return await queue.TakeAsync("stopping", TimeSpan.FromSeconds(30), stop.Token);
            });
            ready.Wait();
            Thread.SpinWait(round % 100); // lands the stop at different points of the take
            stop.Cancel();
            JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
            JobLease? taken = await waiting.WaitAsync(Patience);
            Assert.True(taken is null, $"round {round}: a worker that had stopped took job {taken?.Request.Id}");
            JobLease next = await TakeAsync(queue);
            Assert.Equal(ticket.JobId, next.Request.Id);
            Assert.Equal(1, next.Attempt);
            Assert.True(await next.CompleteAsync(Ok([1])));
        }
    }

    [Fact]
    public async Task RetentionForgetsTheOldestFinishedJobsPastTheByteBudget()
    {
        IJobQueue queue = await OpenAsync(new JobRetention { MaxBytes = 40_000 });
        var ids = new List<string>();
        for (int i = 0; i < 12; i++)
        {
            JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
            ids.Add(ticket.JobId);
            JobLease lease = await TakeAsync(queue);
            Assert.True(await lease.CompleteAsync(Ok(new byte[10_000])));
        }

        // Trimming may run while the jobs finish (durable queues trim periodically): wait for it to settle.
        await EventuallyAsync(async () => (await queue.ListAsync()).Count <= 5);
        Assert.Null(await queue.GetAsync(ids[0]));
        Assert.NotNull(await queue.GetAsync(ids[^1]));
    }

    [Fact]
    public async Task RetentionForgetsFinishedJobsPastTheirAge()
    {
        IJobQueue queue = await OpenAsync(new JobRetention { MaxAge = TimeSpan.FromMilliseconds(300) });
        JobTicket old = await queue.SubmitAsync(Request(detached: true));
        JobLease lease = await TakeAsync(queue);
        Assert.True(await lease.CompleteAsync(Ok([0xc0])));
        JobTicket queued = await queue.SubmitAsync(Request(detached: true)); // not finished: kept however old
        await EventuallyAsync(async () => await queue.GetAsync(old.JobId) is null);
        Assert.NotNull(await queue.GetAsync(queued.JobId));
    }

    [Fact]
    public async Task ListingShowsJobsNewestFirstAndFilters()
    {
        IJobQueue queue = await OpenAsync();
        JobTicket a = await queue.SubmitAsync(Request("alpha.one", detached: true));
        await Task.Delay(5);
        JobTicket b = await queue.SubmitAsync(Request("alpha.two", detached: true));
        await Task.Delay(5);
        JobTicket c = await queue.SubmitAsync(Request("beta", detached: true));
        JobLease lease = await TakeAsync(queue);
        Assert.Equal(a.JobId, lease.Request.Id); // first in, first out
        Assert.True(await lease.CompleteAsync(Ok([0xc0])));

        IReadOnlyList<JobInfo> all = await queue.ListAsync();
        Assert.Equal([c.JobId, b.JobId, a.JobId], all.Select(j => j.Id));
        Assert.Equal([JobState.Queued, JobState.Queued, JobState.Succeeded], all.Select(j => j.State));
        Assert.Equal([b.JobId, a.JobId], (await queue.ListAsync(new JobQuery { Function = "alpha.*" })).Select(j => j.Id));
        Assert.Equal([a.JobId], (await queue.ListAsync(new JobQuery { State = JobState.Succeeded })).Select(j => j.Id));
        Assert.Single(await queue.ListAsync(new JobQuery { Limit = 1 }));
        Assert.All(all, j => Assert.Equal(queue.Name, j.Queue));
    }

    [Fact]
    public async Task AWorkerRunsJobsThroughTheQueueEndToEnd()
    {
        IJobQueue queue = await OpenAsync();
        var executor = new EchoExecutor();
        await using var worker = new JobWorker(queue, executor, new JobWorkerOptions { Concurrency = 4, LeaseDuration = TimeSpan.FromSeconds(5) });
        worker.Start();
        var recorders = new List<Recorder>();
        for (int i = 0; i < 20; i++)
        {
            var r = new Recorder();
            recorders.Add(r);
            await queue.SubmitAsync(Request("echo", args: [(byte)i]), r);
        }

        for (int i = 0; i < 20; i++)
        {
            JobEvent done = await recorders[i].Completed.Task.WaitAsync(Patience);
            Assert.Equal(new byte[] { (byte)i }, done.Outcome!.Result.ToArray());
            Assert.Equal([$"echo {i}\n"], recorders[i].OutputTexts());
        }
    }

    [Fact]
    public async Task AWorkersRunningCountIsTheJobsItIsRunningNow()
    {
        IJobQueue queue = await OpenAsync();
        var executor = new GatedExecutor();
        await using var worker = new JobWorker(queue, executor, new JobWorkerOptions { Concurrency = 4, LeaseDuration = TimeSpan.FromSeconds(5) });
        Assert.Equal(0, worker.Running);
        worker.Start();
        var first = new Recorder();
        var second = new Recorder();
        await queue.SubmitAsync(Request("gated", args: [1]), first);
        await queue.SubmitAsync(Request("gated", args: [2]), second);
        await EventuallyAsync(() => Task.FromResult(executor.Started == 2));
        Assert.Equal(2, worker.Running);

        executor.Release(1);
        await first.Completed.Task.WaitAsync(Patience);
        await EventuallyAsync(() => Task.FromResult(worker.Running == 1));
        executor.Release(2);
        await second.Completed.Task.WaitAsync(Patience);
        await EventuallyAsync(() => Task.FromResult(worker.Running == 0));
    }

    /// <summary>Holds each job (by its first argument byte) until released.</summary>
    private sealed class GatedExecutor : IJobExecutor
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<byte, TaskCompletionSource> _gates = new();
        private int _started;

        public int Started => Volatile.Read(ref _started);

        public void Release(byte key) => Gate(key).TrySetResult();

        private TaskCompletionSource Gate(byte key) => _gates.GetOrAdd(key, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        public async ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _started);
            await Gate(request.Arguments.Span[0]).Task.WaitAsync(cancellationToken);
            return Ok([0xc0]);
        }
    }

    protected static async Task<long> WaitForSequenceAsync(IJobQueue queue, string jobId, long sequence)
    {
        long last = 0;
        await EventuallyAsync(async () => (last = (await queue.GetAsync(jobId))!.LastSequence) >= sequence);
        return last;
    }

    public static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        DateTime giveUp = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, "The condition did not become true in time");
            await Task.Delay(50);
        }
    }

    /// <summary>Echoes the arguments back as the result, printing one line.</summary>
    protected sealed class EchoExecutor : IJobExecutor
    {
        public ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken)
        {
            output.Write(OutputStream.Stdout, $"echo {request.Arguments.Span[0]}\n");
            return new(Ok(request.Arguments.ToArray()));
        }
    }

    /// <summary>Records what an observer hears.</summary>
    protected sealed class Recorder : IJobObserver
    {
        private readonly List<JobEvent> _events = [];

        public string? AcceptedId { get; private set; }

        public TaskCompletionSource<JobEvent> Completed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnAccepted(string jobId) => AcceptedId = jobId;

        public void OnEvent(in JobEvent e)
        {
            lock (_events) _events.Add(e);
            if (e.Kind == JobEventKind.Completed) Completed.TrySetResult(e);
        }

        public JobEvent[] Snapshot()
        {
            lock (_events) return [.. _events];
        }

        public string[] OutputTexts() => [.. Snapshot().Where(e => e.Kind == JobEventKind.Output).Select(e => e.Text!)];

        public async Task WaitForOutputAsync(int count)
        {
            DateTime giveUp = DateTime.UtcNow + Patience;
            while (OutputTexts().Length < count)
            {
                Assert.True(DateTime.UtcNow < giveUp, $"Expected {count} pieces of output, got {OutputTexts().Length}");
                await Task.Delay(20);
            }
        }
    }
}

/// <summary>The promises of queues whose jobs survive the process: the same store opened again has them all.</summary>
public abstract class DurableJobQueueContract : JobQueueContract
{
    [Fact]
    public async Task EveryObjectOnTheStoreHasTheSamePointerKeyAndItOutlivesThem()
    {
        // The servers and workers of a deployment tell its pointers from written ones by this key: they must all have it.
        IJobQueue first = await OpenAsync();
        byte[] key = first.PointerKey.ToArray();
        Assert.Equal(32, key.Length);
        Assert.NotEqual(new byte[32], key);
        IJobQueue second = await OpenAsync();
        Assert.Equal(key, second.PointerKey.ToArray());
        await first.DisposeAsync();
        await second.DisposeAsync();
        Assert.Equal(key, (await OpenAsync()).PointerKey.ToArray());

        await using var elsewhere = new InMemoryJobQueue();
        Assert.NotEqual(key, elsewhere.PointerKey.ToArray());
    }

    [Fact]
    public async Task JobsSurviveTheQueueBeingClosedAndOpenedAgain()
    {
        IJobQueue before = await OpenAsync();
        Assert.True(before.IsDurable);
        JobTicket running = await before.SubmitAsync(Request("first", args: [1], detached: true));
        JobTicket queued = await before.SubmitAsync(Request("second", args: [2], detached: true));
        JobTicket finished = await before.SubmitAsync(Request("third", args: [3], detached: true));
        JobLease dies = await TakeAsync(before, TimeSpan.FromMilliseconds(500));
        Assert.Equal(running.JobId, dies.Request.Id);
        dies.Write(OutputStream.Stdout, "before the restart\n");
        await WaitForSequenceAsync(before, running.JobId, 1);
        await before.DisposeAsync(); // the process goes away without finishing its job

        IJobQueue after = await OpenAsync();
        Assert.Equal(JobState.Queued, (await after.GetAsync(queued.JobId))!.State);

        // The queued jobs run after the restart, in order; the abandoned one comes back once its lease lapses.
        var leases = new List<JobLease>();
        for (int i = 0; i < 3; i++) leases.Add(await TakeAsync(after));
        string[] order = [.. leases.Select(l => l.Request.Id)];
        Assert.Equal(new[] { running.JobId, queued.JobId, finished.JobId }.Order(), order.Order());
        Assert.True(Array.IndexOf(order, queued.JobId) < Array.IndexOf(order, finished.JobId)); // first in, first out
        JobLease again = leases.Single(l => l.Request.Id == running.JobId);
        Assert.Equal(2, again.Attempt);
        Assert.Equal(new byte[] { 1 }, again.Request.Arguments.ToArray());
        foreach (JobLease l in leases) Assert.True(await l.CompleteAsync(Ok(l.Request.Arguments.ToArray())));

        // A caller attaching now gets the recorded output (from both attempts) and the outcome.
        var attach = new Recorder();
        await after.WatchAsync(running.JobId, 0, attach);
        JobEvent done = await attach.Completed.Task.WaitAsync(Patience);
        Assert.Equal(new byte[] { 1 }, done.Outcome!.Result.ToArray());
        Assert.Equal(["before the restart\n"], attach.OutputTexts());
        Assert.Equal("first", again.Request.Function);
    }

    [Fact]
    public async Task TwoQueueObjectsOnOneStoreShareItsJobsAndEvents()
    {
        // A server and a worker in different processes each open the store; here, two objects in one.
        IJobQueue server = await OpenAsync();
        IJobQueue worker = await OpenAsync();
        var seen = new Recorder();
        JobTicket ticket = await server.SubmitAsync(Request("shared"), seen);
        JobLease lease = await TakeAsync(worker);
        Assert.Equal(ticket.JobId, lease.Request.Id);
        lease.Write(OutputStream.Stdout, "hello from the worker\n");
        await seen.WaitForOutputAsync(1);

        var fired = new TaskCompletionSource();
        lease.CancellationToken.Register(() => fired.TrySetResult());
        Assert.True(await server.CancelAsync(ticket.JobId));
        await fired.Task.WaitAsync(Patience); // the cancel reached the other queue object's worker
        Assert.True(await lease.CompleteAsync(JobOutcome.CancelledBy(lease.Request, whileQueued: false)));
        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.Cancelled, done.Outcome!.State);
        Assert.Equal(["hello from the worker\n"], seen.OutputTexts());
    }
}
