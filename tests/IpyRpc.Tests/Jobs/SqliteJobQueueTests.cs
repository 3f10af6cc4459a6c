using IpyRpc.Jobs;
using IpyRpc.Protocol;
using Microsoft.Data.Sqlite;

namespace IpyRpc.Tests.Jobs;

/// <summary>The contract against a real SQLite file in a temporary folder of this test's own.</summary>
public sealed class SqliteJobQueueTests : DurableJobQueueContract
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ipyrpc-sqlite-").FullName;

    protected override Task<IJobQueue> CreateAsync(JobRetention retention)
        => Task.FromResult<IJobQueue>(new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), new SqliteJobQueueOptions { Retention = retention }));

    // ---------------------------------------------------------------- a call that ends with its caller, taken at once

    /// <summary>This test's file opened by another queue object, as another process would (default options).</summary>
    private SqliteJobQueue Open(TimeSpan? pollInterval = null)
        => new(Path.Combine(_folder, "jobs.db"), new SqliteJobQueueOptions { PollInterval = pollInterval ?? TimeSpan.FromMilliseconds(20) });

    private static JobRequest Call(string function = "f") => new() { Function = function, Arguments = new byte[] { 0x91, 0x07 }, EndsWithCaller = true };

    /// <summary>Submits <paramref name="request"/> (a call that ends with its caller) to <paramref name="queue"/> with a worker of its own waiting, so that it is taken at once.</summary>
    private static async Task<(JobTicket Ticket, JobLease Lease)> CallTakenAtOnceAsync(SqliteJobQueue queue, IJobObserver? seen = null, JobRequest? request = null, TimeSpan? lease = null)
    {
        Task<JobLease> taking = TakeAsync(queue, lease); // the worker waits before the submit comes (TakeAsync lists it at once)
        JobTicket ticket = await queue.SubmitAsync(request ?? Call(), seen);
        return (ticket, await taking.WaitAsync(Patience));
    }

    [Fact]
    public async Task TheFileLockedByAnotherWriterPastTheBusyTimeoutFailsRequestsAsUnavailableAndQueuesNothing()
    {
        string path = Path.Combine(_folder, "jobs.db");
        await using var queue = new SqliteJobQueue(path, new SqliteJobQueueOptions { BusyTimeout = TimeSpan.FromMilliseconds(200) });
        JobTicket before = await queue.SubmitAsync(Request("before", detached: true));
        using (var other = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            // Another writer (another process, as far as SQLite's locks go) holds the write lock.
            other.Open();
            using SqliteCommand begin = other.CreateCommand();
            begin.CommandText = "BEGIN IMMEDIATE";
            begin.ExecuteNonQuery();

            var refused = await Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.SubmitAsync(Request("during", detached: true)).AsTask());
            Assert.False(refused.MayHaveBeenQueued);
            Assert.Contains("another process held it locked past the busy timeout (0.2 s): the call was not queued and did not run", refused.Message);
            Assert.IsType<SqliteException>(refused.InnerException);
            var cancel = await Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.CancelAsync(before.JobId).AsTask());
            Assert.Contains($"job {before.JobId} was not cancelled", cancel.Message);
            begin.CommandText = "ROLLBACK";
            begin.ExecuteNonQuery();
        }

        // The lock is gone: the refused job was never queued, the one before was never cancelled.
        await queue.SubmitAsync(Request("after", detached: true));
        Assert.Equal(["after", "before"], (await queue.ListAsync()).Select(j => j.Function));
        Assert.Equal(JobState.Queued, (await queue.GetAsync(before.JobId))!.State);
    }

    [Fact]
    public async Task ACallThatEndsWithItsCallerAndIsTakenAtOnceIsWrittenOnlyWhenItEnds()
    {
        // One commit for the whole call: the job goes to disk with its outcome. Until then no other process can see it,
        // nor could it know of it: its caller is connected to this process and has heard nothing of it yet.
        await using SqliteJobQueue server = Open(TimeSpan.FromSeconds(30)); // no timed write during the test
        await using SqliteJobQueue elsewhere = Open();
        var seen = new Recorder();
        (JobTicket ticket, JobLease lease) = await CallTakenAtOnceAsync(server, seen);
        Assert.Equal(new byte[] { 0x91, 0x07 }, lease.Request.Arguments.ToArray());
        await Task.Delay(200);
        Assert.Null(await elsewhere.GetAsync(ticket.JobId));

        Assert.True(await lease.CompleteAsync(Ok([0x2a])));
        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(new byte[] { 0x2a }, done.Outcome!.Result.ToArray());
        JobInfo info = (await elsewhere.GetAsync(ticket.JobId))!;
        Assert.Equal(JobState.Succeeded, info.State);
        Assert.Equal((1, "w1", false), (info.Attempts, info.Worker, info.Detached));
        Assert.NotNull(info.StartedAt);
        Assert.True(info.CompletedAt >= info.StartedAt);

        // Attaching afterwards, from anywhere, gives the outcome; the job appears in listings; nothing runs it again.
        var late = new Recorder();
        Assert.NotNull(await elsewhere.WatchAsync(ticket.JobId, 0, late));
        Assert.Equal(new byte[] { 0x2a }, (await late.Completed.Task.WaitAsync(Patience)).Outcome!.Result.ToArray());
        Assert.Contains(await elsewhere.ListAsync(), j => j.Id == ticket.JobId && j.State == JobState.Succeeded);
        Assert.Null(await TakeNothingAsync(elsewhere, TimeSpan.FromMilliseconds(300)));
        Assert.Single(seen.Snapshot(), e => e.Kind == JobEventKind.Completed);
    }

    [Fact]
    public async Task ACallThatRunsForAPollIntervalIsWrittenAsRunning()
    {
        await using SqliteJobQueue server = Open(TimeSpan.FromMilliseconds(50));
        await using SqliteJobQueue elsewhere = Open();
        var seen = new Recorder();
        (JobTicket ticket, JobLease lease) = await CallTakenAtOnceAsync(server, seen);

        JobInfo? running = null;
        await EventuallyAsync(async () => (running = await elsewhere.GetAsync(ticket.JobId)) is not null);
        Assert.Equal((JobState.Running, 1, "w1"), (running!.State, running.Attempts, running.Worker));

        // Written, it is a job like any other: its lease renews, and another process's cancel reaches its worker.
        Assert.True(await lease.RenewAsync());
        var fired = new TaskCompletionSource();
        lease.CancellationToken.Register(() => fired.TrySetResult());
        Assert.True(await elsewhere.CancelAsync(ticket.JobId));
        await fired.Task.WaitAsync(Patience);
        Assert.True(await lease.CompleteAsync(JobOutcome.CancelledBy(lease.Request, whileQueued: false)));
        Assert.Equal(JobState.Cancelled, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
        Assert.Equal(JobState.Cancelled, (await elsewhere.GetAsync(ticket.JobId))!.State);
    }

    [Fact]
    public async Task ACallsOutputGoesToDiskWithTheCallAndOtherProcessesWatchingHearIt()
    {
        await using SqliteJobQueue server = Open(TimeSpan.FromSeconds(30)); // only the output writes the job
        await using SqliteJobQueue elsewhere = Open();
        var seen = new Recorder();
        (JobTicket ticket, JobLease lease) = await CallTakenAtOnceAsync(server, seen);
        lease.Write(OutputStream.Stdout, "first line\n");
        await seen.WaitForOutputAsync(1);

        var attached = new Recorder();
        Assert.NotNull(await elsewhere.WatchAsync(ticket.JobId, 0, attached));
        await attached.WaitForOutputAsync(1);
        lease.Write(OutputStream.Stderr, "second line\n");
        Assert.True(await lease.CompleteAsync(Ok([0x01])));
        JobEvent done = await attached.Completed.Task.WaitAsync(Patience);
        Assert.Equal(new byte[] { 0x01 }, done.Outcome!.Result.ToArray());
        Assert.Equal(["first line\n", "second line\n"], attached.OutputTexts());
        Assert.Equal(["first line\n", "second line\n"], seen.OutputTexts());
        Assert.Equal(JobState.Succeeded, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
    }

    [Fact]
    public async Task TheQueueThatRunsAnUnwrittenCallFindsListsAndCancelsIt()
    {
        await using SqliteJobQueue server = Open(TimeSpan.FromSeconds(30));
        var seen = new Recorder();
        (JobTicket ticket, JobLease lease) = await CallTakenAtOnceAsync(server, seen, Call("listed"));

        Assert.Equal(JobState.Running, (await server.GetAsync(ticket.JobId))!.State);
        Assert.Contains(await server.ListAsync(new JobQuery { State = JobState.Running }), j => j.Id == ticket.JobId && j.Function == "listed");
        var fired = new TaskCompletionSource();
        lease.CancellationToken.Register(() => fired.TrySetResult());
        Assert.True(await server.CancelAsync(ticket.JobId));
        await fired.Task.WaitAsync(Patience);
        Assert.True(await lease.CompleteAsync(JobOutcome.CancelledBy(lease.Request, whileQueued: false)));
        Assert.Equal(JobState.Cancelled, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
    }

    [Fact]
    public async Task AnUnwrittenCallStillRunningWhenTheQueueClosesIsWrittenAndRunsAgainAfterItsLeaseLapses()
    {
        SqliteJobQueue server = Open(TimeSpan.FromSeconds(30));
        (JobTicket ticket, _) = await CallTakenAtOnceAsync(server, lease: TimeSpan.FromMilliseconds(300));
        await server.DisposeAsync();

        await using SqliteJobQueue after = Open();
        JobLease again = await TakeAsync(after);
        Assert.Equal((ticket.JobId, 2), (again.Request.Id, again.Attempt));
        Assert.Equal(new byte[] { 0x91, 0x07 }, again.Request.Arguments.ToArray());
        Assert.True(await again.CompleteAsync(Ok([0x02])));
    }

    [Fact]
    public async Task ADeliveredResultsReleaseIsSeenAtOnceHereAndSoonElsewhere()
    {
        await using SqliteJobQueue server = Open(TimeSpan.FromSeconds(30)); // written before a read, or with the next write
        await using SqliteJobQueue ticking = Open(TimeSpan.FromMilliseconds(20)); // or by the background loop
        await using SqliteJobQueue elsewhere = Open();
        foreach (SqliteJobQueue queue in new[] { server, ticking })
        {
            (JobTicket ticket, JobLease lease) = await CallTakenAtOnceAsync(queue);
            Assert.True(await lease.CompleteAsync(Ok(new byte[3000])));
            Assert.Equal(3000, (await elsewhere.GetAsync(ticket.JobId))!.RetainedBytes);
            await queue.ReleaseAsync(ticket.JobId);
            if (queue == server)
            {
                Assert.True((await server.GetAsync(ticket.JobId))!.ResultReleased);
            }

            await EventuallyAsync(async () => (await elsewhere.GetAsync(ticket.JobId))!.ResultReleased);
            Assert.Equal(0, (await elsewhere.GetAsync(ticket.JobId))!.RetainedBytes);
        }
    }

    [Fact]
    public async Task ACallThatDoesNotEndWithItsCallerIsWrittenAtOnce()
    {
        await using SqliteJobQueue server = Open(TimeSpan.FromSeconds(30));
        await using SqliteJobQueue elsewhere = Open();
        (JobTicket ticket, JobLease lease) = await CallTakenAtOnceAsync(server, request: Call() with { EndsWithCaller = false });
        Assert.Equal(JobState.Running, (await elsewhere.GetAsync(ticket.JobId))!.State);
        Assert.True(await lease.CompleteAsync(Ok([0x03])));
    }

    // ---------------------------------------------------------------- other processes' writes, noticed at once

    [Fact]
    public async Task AWorkerElsewhereTakesANewJobAndTheServerHearsItsOutcomeWithoutWaitingForTheirPolls()
    {
        // Polls a minute apart: only the file's change notices can bring either side the other's write within the test.
        var slow = new SqliteJobQueueOptions { PollInterval = TimeSpan.FromMinutes(1) };
        await using var server = new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), slow);
        await using var worker = new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), slow);
        Assert.True(server.IsWatchingFile);
        Assert.True(worker.IsWatchingFile);
        await Task.Delay(300); // both loops past their first look

        for (int i = 0; i < 3; i++)
        {
            Task<JobLease> taking = TakeAsync(worker);
            var seen = new Recorder();
            JobTicket ticket = await server.SubmitAsync(Request(args: [(byte)i]), seen);
            JobLease lease = await taking.WaitAsync(Patience);
            Assert.Equal(ticket.JobId, lease.Request.Id);
            lease.Write(OutputStream.Stdout, $"line {i}\n");
            await seen.WaitForOutputAsync(1);
            Assert.True(await lease.CompleteAsync(Ok([(byte)i])));
            Assert.Equal(new[] { (byte)i }, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.Result.ToArray());
        }

        Assert.True(server.IsWatchingFile); // it runs none of its jobs itself
    }

    [Fact]
    public async Task AQueueWhoseOwnWorkersRunItsCallsStopsWatchingAndStillTakesOtherProcessesJobsAtItsPoll()
    {
        await using var server = new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), new SqliteJobQueueOptions { PollInterval = TimeSpan.FromMilliseconds(50) });
        await using var elsewhere = await OpenAsync();
        Assert.True(server.IsWatchingFile);
        (JobTicket own, JobLease taken) = await CallTakenAtOnceAsync(server, request: Request());
        Assert.Equal(own.JobId, taken.Request.Id);
        await EventuallyAsync(() => Task.FromResult(!server.IsWatchingFile));

        JobTicket theirs = await elsewhere.SubmitAsync(Request("theirs", detached: true));
        JobLease lease = await TakeAsync(server);
        Assert.Equal((theirs.JobId, "theirs"), (lease.Request.Id, lease.Request.Function));
    }

    [Fact]
    public async Task WithoutWatchingTheFileAQueueHearsOtherProcessesAtItsPoll()
    {
        var polling = new SqliteJobQueueOptions { WatchFile = false, PollInterval = TimeSpan.FromMilliseconds(50) };
        await using var server = new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), polling);
        await using var worker = new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), polling);
        Assert.False(server.IsWatchingFile);
        Task<JobLease> taking = TakeAsync(worker);
        var seen = new Recorder();
        await server.SubmitAsync(Request(), seen);
        JobLease lease = await taking.WaitAsync(Patience);
        Assert.True(await lease.CompleteAsync(Ok([0x07])));
        Assert.Equal(JobState.Succeeded, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
