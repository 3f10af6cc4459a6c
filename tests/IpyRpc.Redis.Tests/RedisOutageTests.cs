using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.Tests;
using IpyRpc.Tests.BothWays;
using IpyRpc.Tests.Jobs;
using StackExchange.Redis;

namespace IpyRpc.Redis.Tests;

/// <summary>
/// Redis out of reach: killed and started again, or a connection that breaks after a request reached it. Each test has
/// a redis-server of its own (it kills it), and where a connection must break, a TCP proxy in front of it.
/// </summary>
public sealed class RedisOutageTests : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly string _name = "outage-" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<IAsyncDisposable> _opened = [];
    private RedisServer _redis = null!;

    public async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public async Task DisposeAsync()
    {
        for (int i = _opened.Count - 1; i >= 0; i--) await _opened[i].DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task ASubmitWhoseAnswerIsLostIsMadeAgainAndQueuesItsJobOnce()
    {
        TcpProxy proxy = Open(TcpProxy.Start(_redis.Port));
        RedisJobQueue queue = await OpenAsync($"127.0.0.1:{proxy.Port}");
        RedisJobQueue worker = await OpenAsync(_redis.Configuration);
        IDatabase direct = await DirectAsync();

        // The submit's script reaches Redis and runs (its entry is on the stream); then its connection breaks before the
        // answer comes back. The queue cannot know whether it ran, so it sends it again on the next connection.
        string function = "lost-answer-" + Guid.NewGuid().ToString("N")[..8];
        Task cut = proxy.CutAfterAsync(function, () => JobQueueContract.EventuallyAsync(async () => await direct.StreamLengthAsync(Prefix + ":stream") == 1));
        var seen = new Seen();
        JobTicket ticket = await queue.SubmitAsync(new JobRequest { Function = function, Arguments = new byte[] { 0x90 } }, seen).AsTask().WaitAsync(Patience);
        await cut.WaitAsync(Patience); // the cut was made, so the answer the submit returned with came from a second try

        // Sent twice, queued once: one entry, one job, taken once.
        Assert.Equal(1, await direct.StreamLengthAsync(Prefix + ":stream"));
        Assert.Equal(1, await direct.SortedSetLengthAsync(Prefix + ":jobs"));
        JobLease lease = (await worker.TakeAsync("w", TimeSpan.FromSeconds(30), new CancellationTokenSource(Patience).Token))!;
        Assert.Equal(ticket.JobId, lease.Request.Id);
        Assert.True(await lease.CompleteAsync(JobOutcome.Success(new byte[] { 7 }, Serialization.MessagePack)));
        Assert.Equal(JobState.Succeeded, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
        using var nothing = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        Assert.Null(await worker.TakeAsync("w", TimeSpan.FromSeconds(30), nothing.Token));
        Assert.Equal(1, (await worker.GetAsync(ticket.JobId))!.Attempts);
    }

    [Fact]
    public async Task ARestartShorterThanTheReconnectTimeoutIsNotSeenBySubmitters()
    {
        // Each try waits for a connection up to 1 s (syncTimeout), so a restart of more than that is the queue's to hide.
        RedisJobQueue queue = await OpenAsync(_redis.Configuration + ",syncTimeout=1000", TimeSpan.FromSeconds(20));
        RedisJobQueue worker = await OpenAsync(_redis.Configuration, TimeSpan.FromSeconds(20));
        await queue.SubmitAsync(new JobRequest { Function = "before", Arguments = new byte[] { 0x90 }, Detached = true });

        _redis.Kill();
        var seen = new Seen();
        Task<JobTicket> submitting = queue.SubmitAsync(new JobRequest { Function = "during", Arguments = new byte[] { 0x90 } }, seen).AsTask();
        Task<JobInfo?> looking = queue.GetAsync("none").AsTask();
        await Task.Delay(2500);
        Assert.False(submitting.IsCompleted); // it waits for Redis
        await _redis.StartAgainAsync();

        JobTicket ticket = await submitting.WaitAsync(Patience);
        Assert.Null(await looking.WaitAsync(Patience));
        JobLease first = (await worker.TakeAsync("w", TimeSpan.FromSeconds(30), new CancellationTokenSource(Patience).Token))!;
        JobLease second = (await worker.TakeAsync("w", TimeSpan.FromSeconds(30), new CancellationTokenSource(Patience).Token))!;
        Assert.Equal(["before", "during"], new[] { first.Request.Function, second.Request.Function });
        Assert.True(await second.CompleteAsync(JobOutcome.Success(new byte[] { 7 }, Serialization.MessagePack)));
        Assert.Equal(ticket.JobId, second.Request.Id);
        Assert.Equal(ticket.JobId, seen.AcceptedId);
        Assert.Equal(JobState.Succeeded, (await seen.Completed.Task.WaitAsync(Patience)).Outcome!.State);
    }

    [Fact]
    public async Task RedisDownPastTheReconnectTimeoutFailsRequestsAsUnavailableWithoutItsInternalsAndTheyWorkWhenItIsBack()
    {
        RedisJobQueue queue = await OpenAsync(_redis.Configuration + ",syncTimeout=1000", TimeSpan.FromSeconds(1));
        JobTicket before = await queue.SubmitAsync(new JobRequest { Function = "before", Arguments = new byte[] { 0x90 }, Detached = true });

        _redis.Kill();
        var refused = await Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.SubmitAsync(new JobRequest { Function = "during", Arguments = new byte[] { 0x90 } }, new Seen()).AsTask().WaitAsync(Patience));
        Assert.False(refused.MayHaveBeenQueued); // Redis was down before it was sent: nothing was queued
        Assert.Equal(_name, refused.Queue);
        Assert.Contains("the call was not queued and did not run", refused.Message);
        Assert.DoesNotContain(_redis.Port.ToString(), refused.Message); // the caller is not told where Redis is
        Assert.IsAssignableFrom<RedisException>(refused.InnerException); // the server's log is

        // Every other request a server makes of the queue for a caller, side by side.
        Task[] others =
        [
            Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.GetAsync(before.JobId).AsTask()),
            Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.ListAsync().AsTask()),
            Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.WatchAsync(before.JobId, 0, new Seen()).AsTask()),
            Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.CancelAsync(before.JobId).AsTask()),
            Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.ReleaseAsync(before.JobId).AsTask()),
        ];
        await Task.WhenAll(others).WaitAsync(Patience);
        Assert.Contains($"job {before.JobId} could not be looked up", (await (Task<JobQueueUnavailableException>)others[0]).Message);

        await _redis.StartAgainAsync();
        JobTicket after = await UntilReachedAsync(() => queue.SubmitAsync(new JobRequest { Function = "after", Arguments = new byte[] { 0x90 }, Detached = true }).AsTask());
        Assert.Equal(["after", "before"], (await queue.ListAsync()).Select(j => j.Function)); // "during" was never queued
        Assert.Equal(JobState.Queued, (await queue.GetAsync(after.JobId))!.State);
    }

    [Fact]
    public async Task ASubmitWhoseAnswerIsLostWhileRedisStaysAwaySaysItMayHaveBeenQueuedUnderItsId()
    {
        TcpProxy proxy = Open(TcpProxy.Start(_redis.Port));
        RedisJobQueue queue = await OpenAsync($"127.0.0.1:{proxy.Port},syncTimeout=1000", TimeSpan.FromSeconds(1));
        IDatabase direct = await DirectAsync();

        string function = "lost-for-good-" + Guid.NewGuid().ToString("N")[..8];
        _ = proxy.CutAfterAsync(function, async () =>
        {
            await JobQueueContract.EventuallyAsync(async () => await direct.StreamLengthAsync(Prefix + ":stream") == 1);
            proxy.Refusing = true; // and Redis stays out of reach past the queue's reconnect timeout
        });
        var refused = await Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.SubmitAsync(new JobRequest { Function = function, Arguments = new byte[] { 0x90 } }, new Seen()).AsTask().WaitAsync(Patience));

        Assert.True(refused.MayHaveBeenQueued);
        Assert.NotNull(refused.JobId);
        Assert.Contains($"may have been queued as job {refused.JobId}", refused.Message);

        // It was: once Redis is in reach again, the job is there under that id, queued, to run.
        proxy.Refusing = false;
        JobInfo info = (await UntilReachedAsync(() => queue.GetAsync(refused.JobId!).AsTask()))!;
        Assert.Equal(function, info.Function);
        Assert.Equal(JobState.Queued, info.State);
    }

    [Fact]
    public async Task ACancelWhoseAnswerIsLostIsNotMadeAgainAndSaysItMayHaveBeenMade()
    {
        TcpProxy proxy = Open(TcpProxy.Start(_redis.Port));
        RedisJobQueue queue = await OpenAsync($"127.0.0.1:{proxy.Port}");
        string function = "cancel-lost-" + Guid.NewGuid().ToString("N")[..8];
        JobTicket ticket = await queue.SubmitAsync(new JobRequest { Function = function, Arguments = new byte[] { 0x90 }, Detached = true });

        // The cancel script carries the outcome it writes ("… was cancelled before it started"): the cut follows it, once
        // Redis has run it. Made again, it would find the job ended and say it had cancelled nothing.
        IDatabase direct = await DirectAsync();
        _ = proxy.CutAfterAsync($"{function} was cancelled", () => JobQueueContract.EventuallyAsync(async () =>
            (string?)await direct.HashGetAsync($"{Prefix}:job:{ticket.JobId}", "state") == ((int)JobState.Cancelled).ToString()));
        var lost = await Assert.ThrowsAsync<JobQueueUnavailableException>(() => queue.CancelAsync(ticket.JobId).AsTask().WaitAsync(Patience));

        Assert.Contains($"the cancel of job {ticket.JobId} was sent but not answered", lost.Message);
        Assert.Equal(JobState.Cancelled, (await UntilReachedAsync(() => queue.GetAsync(ticket.JobId).AsTask()))!.State); // it was made
    }

    [Fact]
    public async Task ASubmitToARedisThatIsAReplicaForAMomentWaitsForItsPromotion()
    {
        // A failover as the queue sees it: its Redis answers writes with READONLY until it is made a primary.
        RedisJobQueue queue = await OpenAsync(_redis.Configuration, TimeSpan.FromSeconds(20));
        IDatabase admin = Open(await ConnectionMultiplexer.ConnectAsync(_redis.Configuration + ",allowAdmin=true")).GetDatabase();
        await admin.ExecuteAsync("REPLICAOF", "127.0.0.1", "1"); // a primary that is not there: it stays a read-only replica
        try
        {
            await JobQueueContract.EventuallyAsync(async () => ((string)(await admin.ExecuteAsync("ROLE"))[0]!) == "slave");
            Task<JobTicket> submitting = queue.SubmitAsync(new JobRequest { Function = "during-failover", Arguments = new byte[] { 0x90 }, Detached = true }).AsTask();
            await Task.Delay(1500);
            Assert.False(submitting.IsCompleted);
            await admin.ExecuteAsync("REPLICAOF", "NO", "ONE");
            JobTicket ticket = await submitting.WaitAsync(Patience);
            Assert.Equal(JobState.Queued, (await queue.GetAsync(ticket.JobId))!.State);
        }
        finally
        {
            await admin.ExecuteAsync("REPLICAOF", "NO", "ONE");
        }
    }

    [Fact]
    public async Task AnOutageIsOneWarningInTheQueuesLogAndItsEndAnotherLine()
    {
        var log = new ListLogger();
        RedisJobQueue queue = Open(await RedisJobQueue.ConnectAsync(_redis.Configuration, new RedisJobQueueOptions { Name = _name, Logger = log }));
        bool Said(Microsoft.Extensions.Logging.LogLevel level, string text)
        {
            lock (log.Entries) return log.Entries.Any(e => e.Level == level && e.Message.Contains(text));
        }

        _redis.Kill();
        await JobQueueContract.EventuallyAsync(() => Task.FromResult(Said(Microsoft.Extensions.Logging.LogLevel.Warning, $"The job queue {_name} cannot reach Redis")));
        await Task.Delay(3000); // its connection tries again meanwhile, and fails each time
        await _redis.StartAgainAsync();
        await JobQueueContract.EventuallyAsync(() => Task.FromResult(Said(Microsoft.Extensions.Logging.LogLevel.Information, $"The job queue {_name} reaches Redis again, after")));

        lock (log.Entries) Assert.Single(log.Entries, e => e.Message.Contains("cannot reach Redis"));
        Assert.Empty(await UntilReachedAsync(() => queue.ListAsync().AsTask()));
    }

    [Fact]
    public async Task AQueueOpenedWhileRedisIsStillStartingWaitsForIt()
    {
        _redis.Kill();
        Task<RedisJobQueue> opening = OpenAsync(_redis.Configuration + ",syncTimeout=1000,connectTimeout=1000", TimeSpan.FromSeconds(20));
        await Task.Delay(2500);
        Assert.False(opening.IsCompleted);
        await _redis.StartAgainAsync();
        RedisJobQueue queue = await opening.WaitAsync(Patience);
        JobTicket ticket = await queue.SubmitAsync(new JobRequest { Function = "f", Arguments = new byte[] { 0x90 }, Detached = true });
        Assert.Equal(JobState.Queued, (await queue.GetAsync(ticket.JobId))!.State);
    }

    [Fact]
    public async Task CredentialsRedisRefusesFailTheQueuesOpeningWithoutRetriesAndSaySo()
    {
        IDatabase admin = Open(await ConnectionMultiplexer.ConnectAsync(_redis.Configuration + ",allowAdmin=true")).GetDatabase();
        await admin.ExecuteAsync("CONFIG", "SET", "requirepass", "s3cret");
        try
        {
            var wrong = await Assert.ThrowsAsync<JobQueueUnavailableException>(() => OpenAsync(_redis.Configuration + ",password=wrong,syncTimeout=1000,connectTimeout=1000", TimeSpan.FromSeconds(30)).WaitAsync(Patience));
            Assert.Contains("it refused the password or user of the queue's configuration", wrong.Message);
            Assert.Contains("the queue was not opened", wrong.Message);
            RedisJobQueue right = await OpenAsync(_redis.Configuration + ",password=s3cret");
            Assert.Empty(await right.ListAsync());
        }
        finally
        {
            await admin.ExecuteAsync("CONFIG", "SET", "requirepass", "");
        }
    }

    [Fact]
    public async Task JobRequestsRefusedWhileRedisIsDownLeaveTheConnectionsRoomFree()
    {
        // A connection may hold two calls or jobs at once. Each refused request must give its room back: had they kept
        // it, the third would wait for room that never comes, and the connection could make no call again.
        RedisJobQueue queue = await OpenAsync(_redis.Configuration + ",syncTimeout=1000", TimeSpan.FromSeconds(1));
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, MaxCallsInFlightPerConnection = 2 });
        server.Register(typeof(RestartFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        string tag = "refused-" + _name;

        _redis.Kill();
        for (int i = 0; i < 3; i++)
        {
            var refused = await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.SubmitAsync<int>("restart.add_one", tag, i).WaitAsync(Patience));
            Assert.Contains("not queued", refused.Message);
        }

        await _redis.StartAgainAsync();
        int[] answers = await UntilReachedAsync(() => Task.WhenAll(client.CallAsync<int>("restart.add_one", tag, 1), client.CallAsync<int>("restart.add_one", tag, 2)));
        Assert.Equal([2, 3], answers);
    }

    private string Prefix => "ipyrpc:{" + _name + "}";

    private async Task<RedisJobQueue> OpenAsync(string configuration, TimeSpan? reconnect = null)
        => Open(await RedisJobQueue.ConnectAsync(configuration, new RedisJobQueueOptions { Name = _name, ReconnectTimeout = reconnect ?? TimeSpan.FromSeconds(10) }));

    /// <summary>A connection straight to Redis, past any proxy, to see what it holds.</summary>
    private async Task<IDatabase> DirectAsync() => Open(await ConnectionMultiplexer.ConnectAsync(_redis.Configuration)).GetDatabase();

    private T Open<T>(T disposable) where T : IAsyncDisposable
    {
        _opened.Add(disposable);
        return disposable;
    }

    /// <summary>Makes a request until it no longer finds Redis out of reach (the queue's connection is coming back).</summary>
    private static async Task<T> UntilReachedAsync<T>(Func<Task<T>> request)
    {
        DateTime giveUp = DateTime.UtcNow + Patience;
        while (true)
        {
            try
            {
                return await request();
            }
            catch (Exception e) when (e is JobQueueUnavailableException or IpyRpcUnavailableException && DateTime.UtcNow < giveUp)
            {
                await Task.Delay(100);
            }
        }
    }

    private sealed class Seen : IJobObserver
    {
        public TaskCompletionSource<JobEvent> Completed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string? AcceptedId { get; private set; }

        public void OnAccepted(string jobId) => AcceptedId = jobId;

        public void OnEvent(in JobEvent e)
        {
            if (e.Kind == JobEventKind.Completed) Completed.TrySetResult(e);
        }
    }
}
