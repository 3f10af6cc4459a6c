using IpyRpc.Jobs;
using IpyRpc.Tests.Jobs;
using StackExchange.Redis;

namespace IpyRpc.Redis.Tests;

/// <summary>The contract against a real redis-server; each test on a queue name of its own.</summary>
[Collection(RedisCollection.Name)]
public sealed class RedisJobQueueTests(RedisFixture redis) : DurableJobQueueContract
{
    private readonly string _name = "contract-" + Guid.NewGuid().ToString("N")[..8];

    protected override async Task<IJobQueue> CreateAsync(JobRetention retention)
        => await RedisJobQueue.ConnectAsync(redis.Server.Configuration, new RedisJobQueueOptions { Name = _name, Retention = retention });

    [Fact]
    public async Task APointerKeyRedisLostComesBackFromTheProcessesThatHaveIt()
    {
        // Redis restarted without persistence, or evicted the key: a process opening a queue then must not make another.
        IJobQueue queue = await OpenAsync();
        byte[] key = queue.PointerKey.ToArray();
        using ConnectionMultiplexer admin = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        IDatabase db = admin.GetDatabase();
        Assert.True(await db.KeyDeleteAsync("ipyrpc:pointer-key"));
        byte[]? back = null;
        for (DateTime giveUp = DateTime.UtcNow + Patience; back is null && DateTime.UtcNow < giveUp; await Task.Delay(100))
        {
            back = (byte[]?)await db.StringGetAsync("ipyrpc:pointer-key");
        }

        Assert.Equal(key, back);
        Assert.Equal(key, (await OpenAsync()).PointerKey.ToArray());
    }

    // The queue leases jobs for its waiting workers in one round trip; a worker can stop while that trip is on its
    // way. These tests hold the trip up with CLIENT PAUSE WRITE (scripts wait, reads go on), stop the worker inside
    // it, and check what becomes of the job the trip took for nobody.

    [Fact]
    public async Task AJobTakenForAWorkerThatStoppedOnTheWayGoesBackAsNeverTaken()
    {
        IJobQueue queue = await OpenAsync();
        JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
        var seen = new Recorder();
        using IDisposable? watch = await queue.WatchAsync(ticket.JobId, 0, seen);

        // Attempt 1 is taken and its lease left to lapse, so the trip in the window takes attempt 2 and announces it.
        JobLease first = await TakeAsync(queue, TimeSpan.FromMilliseconds(300));
        await Task.Delay(500);

        await StopAWorkerWhileItsTakeIsOnItsWayAsync(queue);

        // The trip took attempt 2 for the stopped worker (its Started event says so); the job went back, so the next
        // worker runs attempt 2, not 3, and the redelivery is announced once.
        JobLease next = await TakeAsync(queue);
        Assert.Equal(ticket.JobId, next.Request.Id);
        Assert.Equal(2, next.Attempt);
        Assert.False(await first.CompleteAsync(Ok([1]))); // the lapsed attempt no longer holds it
        Assert.True(await next.CompleteAsync(Ok([2])));
        await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal([2], seen.Snapshot().Where(e => e.Kind == JobEventKind.Started).Select(e => e.Attempt));
        Assert.Equal(2, (await queue.GetAsync(ticket.JobId))!.Attempts);
    }

    [Fact]
    public async Task ACancelThatLandsWhileAJobIsOnItsWayToAStoppedWorkerEndsIt()
    {
        IJobQueue queue = await OpenAsync();
        JobTicket ticket = await queue.SubmitAsync(Request(detached: true));
        var seen = new Recorder();
        using IDisposable? watch = await queue.WatchAsync(ticket.JobId, 0, seen);

        // The cancel goes over a connection of its own, so that it is not held up behind the trip. Its queue object
        // trims the store as it opens and then once a second; the pause falls between the two, so nothing else of
        // its own waits on the pause ahead of the cancel.
        IJobQueue canceller = await OpenAsync();
        await Task.Delay(200);

        Task<bool> cancelling = null!;
        await StopAWorkerWhileItsTakeIsOnItsWayAsync(queue, async () =>
        {
            // Its script waits on the pause behind the trip's, so it runs right after it: the job is running then,
            // and the cancel only flags it.
            cancelling = canceller.CancelAsync(ticket.JobId).AsTask();
            await Task.Delay(200);
        });

        Assert.True(await cancelling.WaitAsync(Patience));
        JobEvent done = await seen.Completed.Task.WaitAsync(Patience);
        Assert.Equal(JobState.Cancelled, done.Outcome!.State);
        JobInfo info = (await queue.GetAsync(ticket.JobId))!;
        Assert.Equal(JobState.Cancelled, info.State);
        Assert.InRange(info.Attempts, 0, 1); // 1 when the cancel came between the trip and the job's return, as intended
        Assert.Null(await TakeNothingAsync(queue, TimeSpan.FromMilliseconds(500))); // nobody runs what was cancelled
    }

    // Waking: a take that finds the queue empty records its consumer as idle; a submit wakes the one idle longest, on
    // that consumer's own channel, instead of every worker (which would each run a take and all but one find nothing).
    // The workers here never look for jobs by themselves (a 10-minute poll), so only a wake-up brings them one.

    [Fact]
    public async Task ASubmitWakesOneIdleWorkerAndItIsTheOneThatTakesTheJob()
    {
        await using RedisJobQueue submitter = await OpenQuietAsync();
        RedisJobQueue[] workers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => OpenQuietAsync()));
        await using ConnectionMultiplexer monitor = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        var woken = new List<string>();
        await monitor.GetSubscriber().SubscribeAsync(RedisChannel.Pattern(Prefix + ":wake:*"), (channel, _) =>
        {
            lock (woken) woken.Add(((string)channel!)[(Prefix + ":wake:").Length..]);
        });
        IDatabase db = monitor.GetDatabase();
        try
        {
            Task<JobLease?>[] waiting = [.. workers.Select(w => w.TakeAsync("w", TimeSpan.FromSeconds(30), CancellationToken.None).AsTask())];
            var takers = new List<string>();
            var longestIdle = new List<string>();
            for (int i = 0; i < 30; i++)
            {
                await EventuallyAsync(async () => await db.SortedSetLengthAsync(Prefix + ":idle") == 3);
                longestIdle.Add((string)(await db.SortedSetRangeByRankAsync(Prefix + ":idle", 0, 0))[0]!);
                JobTicket ticket = await submitter.SubmitAsync(Request(args: [(byte)i], detached: true));
                Task<JobLease?> first = await Task.WhenAny(waiting).WaitAsync(Patience);
                int k = Array.IndexOf(waiting, first);
                JobLease lease = (await first)!;
                Assert.Equal(ticket.JobId, lease.Request.Id);
                Assert.True(await lease.CompleteAsync(Ok([1])));
                takers.Add(workers[k].Consumer);
                waiting[k] = workers[k].TakeAsync("w", TimeSpan.FromSeconds(30), CancellationToken.None).AsTask();
            }

            await EventuallyAsync(() => Task.FromResult(Count(woken) >= 30));
            await Task.Delay(200);
            lock (woken) Assert.Equal(takers, woken); // one wake-up a job, to the worker that took it
            Assert.Equal(longestIdle, takers); // the one idle longest
            Assert.All(workers, w => Assert.Contains(w.Consumer, takers)); // so each has its turn
        }
        finally
        {
            foreach (RedisJobQueue w in workers) await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task AnIdleWorkerThatIsGoneIsPassedOverForOneThatListens()
    {
        await using RedisJobQueue submitter = await OpenQuietAsync();
        await using RedisJobQueue worker = await OpenQuietAsync();
        await using ConnectionMultiplexer monitor = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        IDatabase db = monitor.GetDatabase();
        ValueTask<JobLease?> waiting = worker.TakeAsync("w", TimeSpan.FromSeconds(30), CancellationToken.None);
        await EventuallyAsync(async () => await db.SortedSetScoreAsync(Prefix + ":idle", worker.Consumer) is not null);

        // What a worker killed while idle leaves behind: its entry, idle longer than anyone.
        await db.SortedSetAddAsync(Prefix + ":idle", "gone:1:00000000", 0);
        JobTicket ticket = await submitter.SubmitAsync(Request(detached: true));

        JobLease lease = (await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(5)))!;
        Assert.Equal(ticket.JobId, lease.Request.Id);
        Assert.Null(await db.SortedSetScoreAsync(Prefix + ":idle", "gone:1:00000000"));
        Assert.True(await lease.CompleteAsync(Ok([1])));
    }

    [Fact]
    public async Task AQueueThatOnlySubmitsIsSentNoWakeUpsAndOneThatOnlyWorksNoEvents()
    {
        await using RedisJobQueue submitter = await OpenQuietAsync();
        await using RedisJobQueue worker = await OpenQuietAsync();
        var seen = new Recorder();
        await submitter.SubmitAsync(Request(), seen);
        JobLease lease = await TakeAsync(worker);
        Assert.True(await lease.CompleteAsync(Ok([1])));
        Assert.Equal(JobState.Succeeded, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);

        await using ConnectionMultiplexer monitor = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration);
        string[] channels = [Prefix + ":events", Prefix + ":cancel", Prefix + ":wake:" + worker.Consumer, Prefix + ":wake:" + submitter.Consumer];
        var counts = (RedisResult[])(await monitor.GetDatabase().ExecuteAsync("PUBSUB", ["NUMSUB", .. channels]))!;
        Assert.Equal([1L, 1, 1, 0], Enumerable.Range(0, channels.Length).Select(i => (long)counts[2 * i + 1]));
    }

    private string Prefix => "ipyrpc:{" + _name + "}";

    /// <summary>A queue object on this test's queue whose workers look for jobs only when woken (every 10 minutes otherwise).</summary>
    private Task<RedisJobQueue> OpenQuietAsync()
        => RedisJobQueue.ConnectAsync(redis.Server.Configuration, new RedisJobQueueOptions { Name = _name, PollInterval = TimeSpan.FromMinutes(10) });

    private static int Count(List<string> list)
    {
        lock (list) return list.Count;
    }

    /// <summary>
    /// Holds the queue's take script up, has a worker begin to wait and stop inside that window, then does
    /// <paramref name="meanwhile"/> before the script runs.
    /// </summary>
    private async Task StopAWorkerWhileItsTakeIsOnItsWayAsync(IJobQueue queue, Func<Task>? meanwhile = null)
    {
        await using (await PauseWritesAsync(TimeSpan.FromMilliseconds(1500)))
        {
            using var stop = new CancellationTokenSource();
            ValueTask<JobLease?> waiting = queue.TakeAsync("stopping", TimeSpan.FromSeconds(30), stop.Token);
            await WaitForTripAsync();
            stop.Cancel();
            Assert.Null(await waiting.AsTask().WaitAsync(Patience));
            if (meanwhile is not null) await meanwhile();
        }
    }

    /// <summary>Pauses the server's writes (scripts included) until the returned handle is disposed or the time is up.</summary>
    private async Task<IAsyncDisposable> PauseWritesAsync(TimeSpan longest)
    {
        ConnectionMultiplexer admin = await ConnectionMultiplexer.ConnectAsync(redis.Server.Configuration + ",allowAdmin=true");
        await admin.GetDatabase().ExecuteAsync("CLIENT", "PAUSE", (long)longest.TotalMilliseconds, "WRITE");
        return new Unpause(admin);
    }

    /// <summary>Gives the queue's fetch loop time to send its take script, which then waits on the pause.</summary>
    private static Task WaitForTripAsync() => Task.Delay(300);

    private sealed class Unpause(ConnectionMultiplexer admin) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await admin.GetDatabase().ExecuteAsync("CLIENT", "UNPAUSE");
            await admin.CloseAsync();
            admin.Dispose();
        }
    }
}
