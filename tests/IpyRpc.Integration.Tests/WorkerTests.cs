using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.Redis;
using IpyRpc.Tests;
using IpyRpc.TestWorker;
using IpyRpc.ZeroMq;
using Xunit.Abstractions;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// Workers in other processes, through a durable queue: a server in this process takes the calls
/// and runs none itself; worker processes take the jobs; callers see output live and one outcome each.
/// </summary>
public abstract class WorkerTests(ITestOutputHelper log) : IAsyncLifetime
{
    private readonly List<IAsyncDisposable> _cleanup = [];

    protected ITestOutputHelper Log => log;

    /// <summary>Opens the queue on this test's store (every call opens the same store again).</summary>
    protected abstract Task<IJobQueue> OpenQueueAsync();

    /// <summary>The worker program's options that point it at the same store.</summary>
    protected abstract string[] StoreArguments { get; }

    public virtual Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        for (int i = _cleanup.Count - 1; i >= 0; i--) await _cleanup[i].DisposeAsync();
    }

    protected T Track<T>(T disposable) where T : IAsyncDisposable
    {
        _cleanup.Add(disposable);
        return disposable;
    }

    protected async Task<IpyRpcServer> StartServerAsync()
    {
        IJobQueue queue = Track(await OpenQueueAsync());
        // A thousand calls in flight on one connection is what one of these tests does on purpose.
        var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = 0, MaxCallsInFlightPerConnection = 2000 });
        server.Register(typeof(WorkFunctions));
        return Track(server);
    }

    protected async Task<WorkerProcess> StartWorkerAsync(int concurrency = 4, int leaseMs = 1000)
        => Track(await WorkerProcess.StartAsync([.. StoreArguments, "--concurrency", concurrency.ToString(), "--lease-ms", leaseMs.ToString()]));

    protected async Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, List<string>? output = null)
        => Track(await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions
        {
            Output = (_, text) =>
            {
                if (output is null) return;
                lock (output) output.Add(text);
            },
        }));

    [Fact]
    public async Task AWorkerInAnotherProcessRunsCallsAndItsOutputReachesTheCallerLive()
    {
        IpyRpcServer server = await StartServerAsync();
        WorkerProcess worker = await StartWorkerAsync();
        var seen = new List<string>();
        IpyRpcClient client = await ConnectAsync(server, seen);

        Assert.Equal(worker.Pid, await client.CallAsync<int>("work.pid"));

        // Live, shown by cause rather than by clock: the job cannot finish until this test has seen its
        // first line, so output that waited for the job's end would never arrive and the test would fail.
        string gate = Path.Combine(Path.GetTempPath(), $"ipyrpc-gate-{Guid.NewGuid():N}");
        try
        {
            Task<string> call = client.CallAsync<string>("work.gated", "live", gate);
            await EventuallyAsync(() => Count(seen, "live waiting on") == 1);
            Assert.False(call.IsCompleted);
            await File.WriteAllTextAsync(gate, "");
            Assert.Equal($"live done by {worker.Pid}", await call.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.Equal([$"live waiting on {worker.Pid}\n", $"live released on {worker.Pid}\n"], Texts(seen));
        }
        finally
        {
            File.Delete(gate);
        }

        // Several lines from a job that pauses between them arrive in order, each once.
        Assert.Equal($"steps done by {worker.Pid}", await client.CallAsync<string>("work.slow", "steps", 4, 20));
        Assert.Equal(Enumerable.Range(1, 4).Select(i => $"steps step {i} on {worker.Pid}\n"), Texts(seen).Where(t => t.StartsWith("steps ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task AWorkerKilledMidJobLosesNothingAndTheCallerSeesOneOutcome()
    {
        IpyRpcServer server = await StartServerAsync();
        WorkerProcess doomed = await StartWorkerAsync(leaseMs: 1000);
        var seen = new List<string>();
        IpyRpcClient client = await ConnectAsync(server, seen);
        Task<string> call = client.CallAsync<string>("work.slow", "killed", 20, 100);
        await EventuallyAsync(() => Count(seen, $"on {doomed.Pid}") >= 2);

        doomed.Kill(); // kill -9, mid-job
        WorkerProcess rescuer = await StartWorkerAsync(leaseMs: 1000);
        string result = await call.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal($"killed done by {rescuer.Pid}", result);
        Assert.Contains(seen, s => s.Contains("delivered again", StringComparison.Ordinal));
        Assert.Equal(20, Count(seen, $"on {rescuer.Pid}"));
        JobInfo job = Assert.Single(await server.Queue.ListAsync(new JobQuery { Function = "work.slow" }));
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(2, job.Attempts);
        log.WriteLine($"killed worker {doomed.Pid} after {Count(seen, $"on {doomed.Pid}")} steps; worker {rescuer.Pid} ran attempt 2");
    }

    [Fact]
    public async Task AStreamWhoseJobIsDeliveredAgainAfterItsItemsBeganEndsRatherThanRepeatThem()
    {
        IpyRpcServer server = await StartServerAsync();
        WorkerProcess worker = await StartWorkerAsync(leaseMs: 1000);
        IpyRpcClient client = await ConnectAsync(server);
        string gate = Path.Combine(Path.GetTempPath(), $"ipyrpc-stream-gate-{Guid.NewGuid():N}");
        try
        {
            // A call: 200 items read, then its worker is killed at the gate and another runs the job from the start.
            var items = new List<int>();
            await using (IAsyncEnumerator<int> reading = client.StreamAsync<int>("work.gated_stream", 400, gate).GetAsyncEnumerator())
            {
                while (items.Count < 200 && await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))) items.Add(reading.Current);
                worker.Kill();
                worker = await StartWorkerAsync(leaseMs: 1000);
                // The new run is told of before it makes an item (it waits at the gate after its first 200).
                var ended = await Assert.ThrowsAsync<IpyRpcException>(async () =>
                {
                    while (await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))) items.Add(reading.Current);
                });
                Assert.Equal(ErrorCodes.DeliveredAgain, ended.Code);
                Assert.Contains("delivered again", ended.Message);
            }

            Assert.Equal(Enumerable.Range(1, 200), items); // none twice
            JobInfo call = Assert.Single(await server.Queue.ListAsync(new JobQuery { Function = "work.gated_stream" }));
            DateTime giveUp = DateTime.UtcNow.AddSeconds(60);
            while ((await server.Queue.GetAsync(call.Id))!.State != JobState.Cancelled) // nobody reads its new run
            {
                Assert.True(DateTime.UtcNow < giveUp, $"the call's job is {(await server.Queue.GetAsync(call.Id))!.State}");
                await Task.Delay(20);
            }

            // A job: its reading ends the same way, the job runs on, and a reading from the start gets its one run's items.
            IpyRpcJob<long> job = await client.SubmitAsync<long>("work.gated_stream", 400, gate);
            var read = new List<int>();
            await using (IAsyncEnumerator<int> reading = job.ReadItemsAsync<int>().GetAsyncEnumerator())
            {
                while (read.Count < 200 && await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))) read.Add(reading.Current);
                worker.Kill();
                worker = await StartWorkerAsync(leaseMs: 1000);
                var ended = await Assert.ThrowsAsync<IpyRpcException>(async () =>
                {
                    while (await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))) read.Add(reading.Current);
                });
                Assert.Equal(ErrorCodes.DeliveredAgain, ended.Code);
                File.WriteAllText(gate, "");
            }

            Assert.Equal(Enumerable.Range(1, 200), read);
            Assert.Equal(400L, await job.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal(Enumerable.Range(1, 400), await job.ReadItemsAsync<int>().ToListAsync());
        }
        finally
        {
            File.Delete(gate);
        }
    }

    [Fact]
    public async Task AThousandJobsOverThreeWorkerProcessesAreNeitherLostNorDuplicated()
    {
        IpyRpcServer server = await StartServerAsync();
        WorkerProcess[] workers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => StartWorkerAsync(concurrency: 8, leaseMs: 5000)));
        IpyRpcClient client = await ConnectAsync(server);

        // Each worker is up and taking jobs before the burst (a worker still starting would otherwise
        // see the queue drained by the others on a busy machine).
        var seenPids = new HashSet<int>();
        DateTime until = DateTime.UtcNow.AddSeconds(30);
        while (seenPids.Count < workers.Length && DateTime.UtcNow < until)
        {
            int[] pids = await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => client.CallAsync<int>("work.pid")));
            seenPids.UnionWith(pids);
        }

        // Every outcome each caller sees is counted: exactly one per call. Each job takes 2 ms, so no worker
        // drains the burst alone before the others' next look at the queue (a trivial job let one worker
        // take all but a handful on a busy machine).
        var outcomes = new int[1000];
        Task[] calls = [.. Enumerable.Range(0, 1000).Select(async i =>
        {
            long square = await client.CallAsync<long>("work.square_after", (long)i, 2);
            Assert.Equal((long)i * i, square);
            Interlocked.Increment(ref outcomes[i]);
        })];
        await Task.WhenAll(calls).WaitAsync(TimeSpan.FromMinutes(3));
        Assert.All(outcomes, n => Assert.Equal(1, n));

        IReadOnlyList<JobInfo> jobs = await server.Queue.ListAsync(new JobQuery { Function = "work.square_after", Limit = 2000 });
        Assert.Equal(1000, jobs.Count);
        Assert.Equal(1000, jobs.Select(j => j.Id).Distinct().Count());
        Assert.All(jobs, j => Assert.Equal(JobState.Succeeded, j.State));
        Assert.All(jobs, j => Assert.Equal(1, j.Attempts));
        var byWorker = jobs.GroupBy(j => j.Worker).ToDictionary(g => g.Key!, g => g.Count());
        log.WriteLine("jobs per worker: " + string.Join(", ", byWorker.Select(kv => $"{kv.Key}={kv.Value}")));
        Assert.All(workers, w => Assert.True(byWorker.GetValueOrDefault("test-worker-" + w.Pid) > 0, $"worker {w.Pid} ran no job"));
    }

    [Fact]
    public async Task CallsGoOnWhileWorkersAreKilledAndReplacedAndEachCallerGetsItsOneRightAnswer()
    {
        // The soak's length (IPYRPC_SOAK_SECONDS; docs/TESTING.md): 32 calls in flight through three worker processes
        // while, every second and a half, one of them is killed (kill -9, mid-job as likely as not) and another started.
        IpyRpcServer server = await StartServerAsync();
        var workers = new List<WorkerProcess>(await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => StartWorkerAsync(concurrency: 8, leaseMs: 1000))));
        IpyRpcClient client = await ConnectAsync(server);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan length = TimeSpan.FromSeconds(SoakTests.Seconds);
        var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<long, int>();
        var wrong = new System.Collections.Concurrent.ConcurrentQueue<string>();
        long next = -1;
        Task[] callers = [.. Enumerable.Range(0, 32).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed < length)
            {
                long x = Interlocked.Increment(ref next);
                try
                {
                    long square = await client.CallAsync<long>("work.square_after", x, 2);
                    if (square != x * x) wrong.Enqueue($"{x}² came back {square}");
                }
                catch (Exception e)
                {
                    wrong.Enqueue($"{x}: {e.GetType().Name}: {e.Message}");
                }

                outcomes.AddOrUpdate(x, 1, (_, n) => n + 1);
            }
        }))];

        int killed = 0;
        var random = new Random(11);
        while (clock.Elapsed < length)
        {
            await Task.Delay(1500);
            int at = random.Next(workers.Count);
            workers[at].Kill();
            killed++;
            workers[at] = await StartWorkerAsync(concurrency: 8, leaseMs: 1000);
        }

        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromMinutes(2));
        long calls = next + 1;
        Assert.True(wrong.IsEmpty, $"{wrong.Count} wrong outcomes of {calls}, the first: {string.Join(" | ", wrong.Take(5))}");
        Assert.Equal(calls, outcomes.Count);
        Assert.All(outcomes, o => Assert.Equal(1, o.Value));

        // One job a call, every one succeeded; those a killed worker held were delivered again (attempts above one).
        IReadOnlyList<JobInfo> jobs = await server.Queue.ListAsync(new JobQuery { Function = "work.square_after", Limit = (int)calls + 100 });
        Assert.Equal(calls, jobs.Count);
        Assert.All(jobs, j => Assert.Equal(JobState.Succeeded, j.State));
        int again = jobs.Count(j => j.Attempts > 1);
        log.WriteLine($"{calls} calls in {clock.Elapsed.TotalSeconds:F0} s through {workers.Count} workers, {killed} killed and replaced; {again} jobs delivered again");
    }

    [Fact]
    public async Task QueuedJobsRunAfterAServerRestartAndTheirCallersAttach()
    {
        string[] ids;
        // The first server takes the jobs; no worker is running, so they wait in the store.
        await using (IJobQueue first = await OpenQueueAsync())
        await using (var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = first, Concurrency = 0 }))
        {
            server.Register(typeof(WorkFunctions));
            await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
            ids = await Task.WhenAll(Enumerable.Range(0, 5).Select(async i => (await client.SubmitAsync<string>("work.slow", $"restart{i}", 2, 10)).Id));
        }

        IpyRpcServer restarted = await StartServerAsync();
        IpyRpcClient again = await ConnectAsync(restarted);
        foreach (string id in ids) Assert.Equal(JobState.Queued, (await again.GetJobAsync(id)).State);
        WorkerProcess worker = await StartWorkerAsync();
        for (int i = 0; i < ids.Length; i++)
        {
            IpyRpcJob<string> job = await again.AttachAsync<string>(ids[i]);
            Assert.Equal($"restart{i} done by {worker.Pid}", await job.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal([$"restart{i} step 1 on {worker.Pid}\n", $"restart{i} step 2 on {worker.Pid}\n"], job.Output.Select(o => o.Text));
        }
    }

    [Fact]
    public async Task AStreamJobsItemsComeFromTheWorkerAndAreReadOnAcrossAServerRestart()
    {
        string endpoint = $"tcp://127.0.0.1:{LoopbackPorts.Free()}";
        string gate = Path.Combine(Path.GetTempPath(), $"ipyrpc-stream-gate-{Guid.NewGuid():N}");
        async Task<(IpyRpcServer, IpyRpcZeroMqServer)> ServeAsync()
        {
            var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = Track(await OpenQueueAsync()), Concurrency = 0 });
            server.Register(typeof(WorkFunctions));
            return (server, IpyRpcZeroMqServer.Start(server, endpoint));
        }

        (IpyRpcServer first, IpyRpcZeroMqServer firstHost) = await ServeAsync();
        await StartWorkerAsync();
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(endpoint, new IpyRpcClientOptions
        {
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(50), WaitForReconnect = TimeSpan.FromSeconds(30) },
        });
        IpyRpcJob<long> job = await client.SubmitAsync<long>("work.gated_stream", 400, gate);
        await using IAsyncEnumerator<int> reading = job.ReadItemsAsync<int>().GetAsyncEnumerator();
        var items = new List<int>();
        while (items.Count < 200 && await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))) items.Add(reading.Current);

        // The worker waits at the gate, in its own process, while the server goes away and another takes its place.
        await firstHost.DisposeAsync();
        await first.DisposeAsync();
        (IpyRpcServer second, IpyRpcZeroMqServer secondHost) = await ServeAsync();
        await using (second)
        await using (secondHost)
        {
            File.WriteAllText(gate, "");
            try
            {
                while (await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))) items.Add(reading.Current);
            }
            finally
            {
                File.Delete(gate);
            }

            // Every item once, in order: the reading went on after the last item it had.
            Assert.Equal(Enumerable.Range(1, 400), items);
            Assert.Equal(400L, await job.WaitAsync(TimeSpan.FromSeconds(30)));
        }
    }

    [Fact]
    public async Task CancellingAJobFiresItsTokenInTheWorkerProcess()
    {
        IpyRpcServer server = await StartServerAsync();
        WorkerProcess worker = await StartWorkerAsync();
        var seen = new List<string>();
        IpyRpcClient client = await ConnectAsync(server, seen);
        IpyRpcJob<string> job = await client.SubmitAsync<string>("work.wait_for_cancel");
        Task<string> waiting = job.WaitAsync();
        await EventuallyAsync(() => Count(seen, "waiting on") == 1);

        Assert.True(await client.CancelJobAsync(job.Id));
        await Assert.ThrowsAsync<IpyRpcCancelledException>(() => waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains($"cancelled on {worker.Pid}\n", seen); // the function saw its token fire, in the other process
    }

    [Fact]
    public async Task AWorkerStoppedWithSigtermFinishesItsJobFirst()
    {
        IpyRpcServer server = await StartServerAsync();
        WorkerProcess worker = await StartWorkerAsync();
        var seen = new List<string>();
        IpyRpcClient client = await ConnectAsync(server, seen);
        Task<string> call = client.CallAsync<string>("work.slow", "drain", 5, 200);
        await EventuallyAsync(() => Count(seen, "drain step") >= 1);
        Assert.Equal(0, await worker.TerminateAsync()); // exits cleanly, after the job
        Assert.Equal($"drain done by {worker.Pid}", await call.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    private static string[] Texts(List<string> lines)
    {
        lock (lines) return [.. lines];
    }

    protected static int Count(List<string> lines, string part)
    {
        lock (lines) return lines.Count(l => l.Contains(part, StringComparison.Ordinal));
    }

    protected static async Task EventuallyAsync(Func<bool> condition)
    {
        DateTime giveUp = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, "The condition did not become true in time");
            await Task.Delay(20);
        }
    }
}

public sealed class SqliteWorkerTests(ITestOutputHelper log) : WorkerTests(log)
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ipyrpc-workers-").FullName;

    private string File => Path.Combine(_folder, "jobs.db");

    protected override Task<IJobQueue> OpenQueueAsync() => Task.FromResult<IJobQueue>(new SqliteJobQueue(File));

    protected override string[] StoreArguments => ["--sqlite", File];

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}

public sealed class RedisWorkerTests(ITestOutputHelper log) : WorkerTests(log)
{
    private readonly string _queue = "workers-" + Guid.NewGuid().ToString("N")[..8];
    private RedisServer _redis = null!;

    public override async Task InitializeAsync() => _redis = await RedisServer.StartAsync();

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await _redis.DisposeAsync();
    }

    protected override async Task<IJobQueue> OpenQueueAsync() => await RedisJobQueue.ConnectAsync(_redis.Configuration, new RedisJobQueueOptions { Name = _queue });

    protected override string[] StoreArguments => ["--redis", _redis.Configuration, "--queue", _queue];

    [Fact]
    public async Task ARedisRestartWithItsAppendOnlyFileLosesNoJob()
    {
        IpyRpcServer server = await StartServerAsync();
        IpyRpcClient client = await ConnectAsync(server);
        string[] ids = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i => (await client.SubmitAsync<long>("work.square", (long)i)).Id));

        await _redis.RestartAsync(); // SIGKILL, then start again from the append-only file
        WorkerProcess worker = await StartWorkerAsync();
        for (int i = 0; i < ids.Length; i++)
        {
            long square = await (await RetryAsync(() => client.AttachAsync<long>(ids[i]))).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Equal((long)i * i, square);
        }
    }

    [Fact]
    public async Task WhileRedisIsDownCallsFailAsUnavailableOnEveryCarrierAndAllServesOnWhenItIsBack()
    {
        // Each try waits up to 1 s for a connection, and the queue tries for 1 s: a short test of a long outage.
        IJobQueue queue = Track(await RedisJobQueue.ConnectAsync(_redis.Configuration + ",syncTimeout=1000", new RedisJobQueueOptions { Name = _queue, ReconnectTimeout = TimeSpan.FromSeconds(1) }));
        IpyRpcServer server = Track(new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = 0 }));
        server.Register(typeof(WorkFunctions));
        IpyRpcHttpServer http = Track(await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0"));
        using var web = new HttpClient { BaseAddress = http.Address };
        WorkerProcess worker = await StartWorkerAsync();
        IpyRpcClient client = await ConnectAsync(server);
        Assert.Equal(4L, await client.CallAsync<long>("work.square", 2L));

        _redis.Kill();
        var refused = await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.CallAsync<long>("work.square", 3L).WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.Null(refused.JobId); // Redis was gone before the call: it was not queued
        Assert.Contains("make it again once Redis is back", refused.Message);
        using (JsonDocument reply = await PostJsonRpcAsync(web, """{"jsonrpc":"2.0","method":"work.square","params":[3],"id":7}"""))
        {
            JsonElement error = reply.RootElement.GetProperty("error");
            Assert.Equal(-32016, error.GetProperty("code").GetInt32());
            Assert.Equal("unavailable", error.GetProperty("data").GetProperty("code").GetString());
        }

        // A script sees it by the command's exit code: try again later.
        (int exit, string said) = await Repository.RunAsync("dotnet", AppContext.BaseDirectory, [Path.Combine(AppContext.BaseDirectory, "IpyRpc.Cli.dll"), "call", http.Address.ToString(), "work.square", "3"]);
        Assert.True(exit == 6, said);
        Assert.Contains("cannot reach Redis", said);

        // Back: the same connection, a JSON-RPC caller and the worker that lived through it all go on.
        await _redis.StartAgainAsync();
        Assert.Equal(9L, await RetryAsync(() => client.CallAsync<long>("work.square", 3L)));
        Assert.Equal(worker.Pid, await client.CallAsync<int>("work.pid"));
        using (JsonDocument reply = await PostJsonRpcAsync(web, """{"jsonrpc":"2.0","method":"work.square","params":[5],"id":8}"""))
        {
            Assert.Equal(25, reply.RootElement.GetProperty("result").GetInt64());
        }
    }

    [Fact]
    public async Task CallsGoOnWhileRedisIsKilledAndStartedAgainAndEachCallerLearnsWhatBecameOfItsCall()
    {
        // The soak's length (IPYRPC_SOAK_SECONDS; docs/TESTING.md): 32 calls in flight through two worker processes while
        // Redis is killed (kill -9) every two seconds or so and started again from its append-only file after 0.2 to 2.5 s.
        // The server's queue tries for 1 s (each try waiting up to 1 s): some outages are hidden from callers, some not.
        IJobQueue queue = Track(await RedisJobQueue.ConnectAsync(_redis.Configuration + ",syncTimeout=1000", new RedisJobQueueOptions { Name = _queue, ReconnectTimeout = TimeSpan.FromSeconds(1) }));
        IpyRpcServer server = Track(new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = 0 }));
        server.Register(typeof(WorkFunctions));
        WorkerProcess[] workers = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => StartWorkerAsync(concurrency: 8, leaseMs: 1000)));
        IpyRpcClient client = await ConnectAsync(server);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan length = TimeSpan.FromSeconds(SoakTests.Seconds);
        var wrong = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var maybe = new System.Collections.Concurrent.ConcurrentQueue<(string Id, long X)>();
        long next = -1, answered = 0, notQueued = 0;
        Task[] callers = [.. Enumerable.Range(0, 32).Select(_ => Task.Run(async () =>
        {
            while (clock.Elapsed < length)
            {
                long x = Interlocked.Increment(ref next);
                try
                {
                    long square = await client.CallAsync<long>("work.square", x);
                    if (square != x * x) wrong.Enqueue($"{x}² came back {square}");
                    Interlocked.Increment(ref answered);
                }
                catch (IpyRpcUnavailableException e)
                {
                    if (e.JobId is { } id) maybe.Enqueue((id, x));
                    else Interlocked.Increment(ref notQueued);
                    await Task.Delay(100);
                }
                catch (Exception e)
                {
                    wrong.Enqueue($"{x}: {e.GetType().Name}: {e.Message}");
                }
            }
        }))];

        int outages = 0;
        var random = new Random(7);
        while (clock.Elapsed < length)
        {
            await Task.Delay(1500 + random.Next(1000));
            _redis.Kill();
            await Task.Delay(200 + random.Next(2300));
            await _redis.StartAgainAsync();
            outages++;
        }

        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromMinutes(2));
        long calls = next + 1;
        Assert.True(wrong.IsEmpty, $"{wrong.Count} wrong outcomes of {calls}, the first: {string.Join(" | ", wrong.Take(5))}");
        Assert.Equal(calls, answered + notQueued + maybe.Count);

        // Each call that may have been queued was, and then ran, or was not; none ran twice, and none that was answered is missing.
        int ranAnyway = 0;
        foreach ((string id, long x) in maybe)
        {
            try
            {
                IpyRpcJob<long> job = await RetryAsync(() => client.AttachAsync<long>(id));
                Assert.Equal(x * x, await job.WaitAsync(TimeSpan.FromSeconds(60)));
                ranAnyway++;
            }
            catch (IpyRpcNotFoundException)
            {
            }
        }

        // Asked of the queue itself: a listing over the wire stops at 10,000 jobs.
        IReadOnlyList<JobInfo> jobs = await RetryAsync(() => queue.ListAsync(new JobQuery { Function = "work.square", Limit = (int)calls + 100 }).AsTask());
        Assert.Equal(answered + ranAnyway, jobs.Count);
        Assert.All(workers, w => Assert.False(w.HasExited));
        Log.WriteLine($"{calls} calls in {clock.Elapsed.TotalSeconds:F0} s, {outages} Redis outages: {answered} answered, {notQueued} not queued, "
            + $"{maybe.Count} that may have been ({ranAnyway} were, and ran)");
    }

    private static async Task<JsonDocument> PostJsonRpcAsync(HttpClient web, string request)
    {
        using HttpResponseMessage response = await web.PostAsync("rpc", new StringContent(request, System.Text.Encoding.UTF8, "application/json"));
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync());
    }

    private static async Task<T> RetryAsync<T>(Func<Task<T>> action)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return await action();
            }
            catch (Exception e) when (e is IpyRpcUnavailableException or JobQueueUnavailableException && attempt < 50)
            {
                await Task.Delay(100); // the server's connection to Redis is coming back
            }
        }
    }
}
