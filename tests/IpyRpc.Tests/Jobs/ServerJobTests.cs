using IpyRpc.Jobs;
using IpyRpc.Protocol;
using Xunit.Abstractions;

namespace IpyRpc.Tests.Jobs;

/// <summary>Functions for job tests.</summary>
public static class JobFunctions
{
    /// <summary>Prints "step i" for each step, waiting for the gate "name.i" before each one after the first.</summary>
    [IpyRpcExport("job.steps")]
    public static async Task<int> Steps(string name, int steps, CancellationToken ct)
    {
        for (int i = 1; i <= steps; i++)
        {
            if (i > 1) await Gates.WaitAsync($"{name}.{i}", ct);
            Console.WriteLine($"step {i}");
            Gates.Open($"{name}.printed.{i}");
        }

        return steps;
    }

    /// <summary>Returns its argument.</summary>
    [IpyRpcExport("job.echo_bytes")]
    public static byte[] EchoBytes(byte[] data) => data;

    /// <summary>Returns how many bytes it got.</summary>
    [IpyRpcExport("job.count_bytes")]
    public static int CountBytes(byte[] data) => data.Length;
}

/// <summary>Runs apart from other tests: its tests measure the process's managed heap or count its thread pool's work items, which tests running beside them would grow.</summary>
[CollectionDefinition(nameof(ProcessWideMemory), DisableParallelization = true)]
public sealed class ProcessWideMemory;

[Collection(nameof(ProcessWideMemory))]
public sealed class ServerJobTests(ITestOutputHelper output)
{
    private static IpyRpcServer Server(IpyRpcServerOptions? options = null, GlobConfig? config = null)
    {
        var server = new IpyRpcServer(options);
        server.Register(typeof(BehaviourFunctions)).Register(typeof(JobFunctions)).Register(typeof(ShapeFunctions));
        if (config is not null) server.Config(config);
        return server;
    }

    /// <summary>An in-process client whose remote output goes to <paramref name="output"/> (or nowhere).</summary>
    internal static Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, List<string>? output = null)
        => IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions
        {
            Output = (_, text) =>
            {
                if (output is null) return;
                lock (output) output.Add(text);
            },
        });

    [Fact]
    public async Task ASubmittedJobReturnsAHandleAtOnceAndItsResultWhenItIsReady()
    {
        await using IpyRpcServer server = Server();
        var seen = new List<string>();
        await using IpyRpcClient client = await ConnectAsync(server, seen);
        string name = Gates.NewName("submit");

        IpyRpcJob<int> job = await client.SubmitAsync<int>("job.steps", name, 2);
        Assert.False(string.IsNullOrEmpty(job.Id));
        Assert.Equal("job.steps", job.Function);
        Assert.True(job.Info.Detached);
        await Gates.WaitAsync(name + ".printed.1");
        Assert.Equal(JobState.Running, (await job.RefreshAsync()).State);
        Assert.False(job.WaitAsync().IsCompleted);

        Gates.Open(name + ".2");
        Assert.Equal(2, await job);
        Assert.Equal(["step 1\n", "step 2\n"], job.Output.Select(o => o.Text));
        Assert.Equal(["step 1\n", "step 2\n"], seen); // live output went to the client's handler too
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal(JobState.Succeeded, (await client.GetJobAsync(job.Id)).State);
    }

    [Fact]
    public async Task ASubmitWhoseArgumentsCannotFitIsRefusedAtOnceAndQueuesNothing()
    {
        // No worker takes jobs here (they would run elsewhere): a misfit found only when one ran would reach nobody.
        string folder = Directory.CreateTempSubdirectory("ipyrpc-submit-").FullName;
        try
        {
            await using var store = new SqliteJobQueue(Path.Combine(folder, "jobs.db"));
            await using IpyRpcServer server = Server(new IpyRpcServerOptions { Queue = store, Concurrency = 0 });
            await using IpyRpcClient client = await ConnectAsync(server);

            var missing = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.SubmitAsync<int>("job.steps", "only-a-name"));
            Assert.Equal("steps", missing.Parameter);
            Assert.Contains("missing the required argument 'steps' (int)", missing.Message);
            var extra = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.SubmitAsync<int>("job.steps", "a", 1, 2));
            Assert.Contains("takes 2 arguments but 3 were given", extra.Message);
            var unknown = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.SubmitNamedAsync<int>("job.steps", new Dictionary<string, object?> { ["name"] = "a", ["count"] = 1 }));
            Assert.Equal("count", unknown.Parameter);
            // A value that cannot be read as its parameter's type, as a call would be told.
            var wrongType = await Assert.ThrowsAsync<InvalidArgumentsException>(() => client.SubmitAsync<int>("job.steps", "a", "three"));
            Assert.Equal("steps", wrongType.Parameter);
            Assert.Contains("Argument 'steps' of job.steps must be int: Expected an integer but found a string", wrongType.Message);
            Assert.Empty(await server.Queue.ListAsync());

            // Arguments that fit and read as their types are queued, and an optional one may be left out.
            IpyRpcJob<int> queued = await client.SubmitAsync<int>("job.steps", "a", 1);
            IpyRpcJob<string> greeting = await client.SubmitAsync<string>("greet", "ann");
            Assert.Equal(2, (await server.Queue.ListAsync()).Count);
            Assert.Equal(JobState.Queued, queued.State);
            Assert.Equal(JobState.Queued, greeting.State);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task AJobOutlivesItsSubmittersConnectionAndAnotherClientAttachesToIt()
    {
        await using IpyRpcServer server = Server();
        string name = Gates.NewName("leave");
        string id;
        await using (IpyRpcClient first = await ConnectAsync(server))
        {
            IpyRpcJob<int> job = await first.SubmitAsync<int>("job.steps", name, 3);
            id = job.Id;
            await Gates.WaitAsync(name + ".printed.1");
        }

        // The submitter is gone; the job goes on.
        Gates.Open(name + ".2");
        await Gates.WaitAsync(name + ".printed.2");
        var seen = new List<string>();
        await using IpyRpcClient second = await ConnectAsync(server, seen);
        IpyRpcJob<int> attached = await second.AttachAsync<int>(id);
        Assert.Equal(JobState.Running, attached.State);
        Task<int> result = attached.WaitAsync();
        await EventuallyAsync(() => seen.Count >= 2); // the recorded output is replayed first
        Assert.Equal(["step 1\n", "step 2\n"], seen);
        Gates.Open(name + ".3");
        Assert.Equal(3, await result);
        Assert.Equal(["step 1\n", "step 2\n", "step 3\n"], seen); // then the rest, live
    }

    [Fact]
    public async Task APlainCallIsCancelledWhenItsCallerDisconnects()
    {
        await using IpyRpcServer server = Server();
        string gate = Gates.NewName("plain");
        IpyRpcClient client = await ConnectAsync(server);
        Task<string> call = client.CallAsync<string>("wait_for_cancel", gate);
        await Gates.WaitAsync(gate + ".started");
        await client.DisposeAsync();
        await Gates.WaitAsync(gate + ".cancelled"); // the function's token fired
        await Assert.ThrowsAnyAsync<IpyRpcException>(() => call);
    }

    [Fact]
    public async Task WithCancelOnDisconnectOffAPlainCallRunsOnAndItsResultWaitsToBeAttached()
    {
        await using IpyRpcServer server = Server(config: new GlobConfig { ["job.*"] = new FunctionOptions { CancelOnDisconnect = false } });
        string name = Gates.NewName("keep");
        IpyRpcClient client = await ConnectAsync(server);
        Task<int> call = client.CallAsync<int>("job.steps", name, 2);
        await Gates.WaitAsync(name + ".printed.1");
        await client.DisposeAsync();
        await Assert.ThrowsAsync<IpyRpcConnectionException>(() => call);

        Gates.Open(name + ".2");
        await using IpyRpcClient again = await ConnectAsync(server);
        JobInfo running = Assert.Single(await again.ListJobsAsync(new JobQuery { Function = "job.steps" }));
        Assert.False(running.Detached);
        IpyRpcJob<int> job = await again.AttachAsync<int>(running.Id);
        Assert.Equal(2, await job.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task WithCancelOnDisconnectOnASubmittedJobIsCancelledWithItsConnection()
    {
        await using IpyRpcServer server = Server(config: new GlobConfig { ["wait_for_cancel"] = new FunctionOptions { CancelOnDisconnect = true } });
        string gate = Gates.NewName("tied");
        IpyRpcClient client = await ConnectAsync(server);
        IpyRpcJob<string> job = await client.SubmitAsync<string>("wait_for_cancel", gate);
        await Gates.WaitAsync(gate + ".started");
        await client.DisposeAsync();
        await Gates.WaitAsync(gate + ".cancelled");
        await EventuallyAsync(async () => (await server.Queue.GetAsync(job.Id))!.State == JobState.Cancelled);
    }

    [Fact]
    public async Task CancellingAJobByIdFiresItsTokenAndItsWaitersHearOfIt()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        string gate = Gates.NewName("cancel");
        IpyRpcJob<string> job = await client.SubmitAsync<string>("wait_for_cancel", gate);
        await Gates.WaitAsync(gate + ".started");
        Task<string> waiting = job.WaitAsync();

        await using IpyRpcClient other = await ConnectAsync(server);
        Assert.True(await other.CancelJobAsync(job.Id));
        await Gates.WaitAsync(gate + ".cancelled");
        await Assert.ThrowsAsync<IpyRpcCancelledException>(() => waiting);
        Assert.Equal(JobState.Cancelled, job.State);
        Assert.False(await other.CancelJobAsync(job.Id)); // already over
    }

    [Fact]
    public async Task UnknownJobsAreNotFoundWithAClearMessage()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        var e = await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => client.AttachAsync<int>("no-such-job"));
        Assert.Contains("no-such-job", e.Message);
        await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => client.CancelJobAsync("no-such-job"));
        await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => client.GetJobAsync("no-such-job"));
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3)); // the connection goes on
    }

    [Fact]
    public async Task ListingAndStatusShowJobsWithTheirOutput()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        string name = Gates.NewName("list");
        IpyRpcJob<int> job = await client.SubmitAsync<int>("job.steps", name, 2);
        await Gates.WaitAsync(name + ".printed.1");

        JobInfo withOutput = await client.GetJobAsync(job.Id, withOutput: true);
        Assert.Equal(["step 1\n"], withOutput.Output.Select(o => o.Text));
        Assert.Equal(JobState.Running, withOutput.State);
        Assert.Equal(1, withOutput.Attempts);
        Assert.NotNull(withOutput.Worker);
        Assert.Contains(await client.ListJobsAsync(new JobQuery { State = JobState.Running }), j => j.Id == job.Id);
        Assert.DoesNotContain(await client.ListJobsAsync(new JobQuery { State = JobState.Succeeded }), j => j.Id == job.Id);
        Gates.Open(name + ".2");
        await job;
        Assert.Contains(await client.ListJobsAsync(new JobQuery { State = JobState.Succeeded, Function = "job.*" }), j => j.Id == job.Id);
    }

    [Fact]
    public async Task ATimeoutCountsTheTimeACallSpendsQueued()
    {
        // One worker, held by the first call: the second would wait forever if its timeout only started when it ran.
        await using IpyRpcServer server = Server(new IpyRpcServerOptions { Concurrency = 1 }, new GlobConfig { ["add"] = new FunctionOptions { Timeout = TimeSpan.FromMilliseconds(300) } });
        await using IpyRpcClient client = await ConnectAsync(server);
        string name = Gates.NewName("hold");
        Task<int> holder = client.CallAsync<int>("job.steps", name, 2);
        await Gates.WaitAsync(name + ".printed.1");

        var e = await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => client.CallAsync<int>("add", 1, 2));
        Assert.Contains("never ran", e.Message);
        Assert.False(holder.IsCompleted);
        Gates.Open(name + ".2");
        Assert.Equal(2, await holder);
    }

    [Fact]
    public async Task APlainCallsResultIsReleasedOnceDeliveredAndASubmittedJobsIsKept()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        byte[] data = new byte[50_000];
        Assert.Equal(data.Length, (await client.CallAsync<byte[]>("job.echo_bytes", data)).Length);
        JobInfo call = Assert.Single(await server.Queue.ListAsync(new JobQuery { Function = "job.echo_bytes" }));
        await EventuallyAsync(async () => (await server.Queue.GetAsync(call.Id))!.ResultReleased);
        Assert.True((await server.Queue.GetAsync(call.Id))!.RetainedBytes < 1000);

        IpyRpcJob<byte[]> job = await client.SubmitAsync<byte[]>("job.echo_bytes", data);
        Assert.Equal(data.Length, (await job).Length);
        Assert.Equal(data.Length, (await (await client.AttachAsync<byte[]>(job.Id)).WaitAsync()).Length); // still there for a second look
        Assert.False((await server.Queue.GetAsync(job.Id))!.ResultReleased);
    }

    [Fact]
    public async Task MemoryReturnsToNearItsStartAfterCallsWithLargeArguments()
    {
        const int Payload = 15 * 1024 * 1024;
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2)); // warm up
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < 30; i++)
        {
            Assert.Equal(Payload, await EchoAsync(client, i));
        }

        await Task.Delay(100); // let the last reply's relay finish releasing the job's result
        // Arrays above the shared pool's sizes are held for reuse for about a second after their last call.
        await EventuallyAsync(() => PooledParts.LargeBytesHeld == 0);
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        double growth = (after - before) / (double)Payload;
        output.WriteLine($"30 echo calls of {Payload / (1024 * 1024)} MiB: managed heap {before / (1024 * 1024.0):F1} MiB before, {after / (1024 * 1024.0):F1} MiB after ({growth:F2} payloads kept)");
        Assert.True(growth < 2, $"The server keeps {growth:F2} payloads' worth of memory after the calls finished");
    }

    // Apart from the test's own state machine, so nothing of the call outlives it there.
    private static async Task<int> EchoAsync(IpyRpcClient client, int i)
    {
        byte[] data = new byte[15 * 1024 * 1024];
        data[i] = 1;
        return (await client.CallAsync<byte[]>("job.echo_bytes", data)).Length;
    }

    private static Task EventuallyAsync(Func<bool> condition) => EventuallyAsync(() => Task.FromResult(condition()));

    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        DateTime giveUp = DateTime.UtcNow.AddSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, "The condition did not become true in time");
            await Task.Delay(20);
        }
    }
}

/// <summary>A queue whose store fails on lookups, as Redis does while it restarts.</summary>
internal sealed class UnreachableLookups(IJobQueue inner) : IJobQueue
{
    public string Name => inner.Name;

    public bool IsDurable => inner.IsDurable;

    public ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default) => inner.SubmitAsync(request, observer, cancellationToken);

    public ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default) => throw new IOException("the store is unreachable");

    public ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default) => throw new IOException("the store is unreachable");

    public ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default) => throw new IOException("the store is unreachable");

    public ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default) => inner.CancelAsync(jobId, cancellationToken);

    public ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default) => inner.ReleaseAsync(jobId, cancellationToken);

    public ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) => inner.TakeAsync(workerId, leaseDuration, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>A queue whose store is out of reach while <see cref="Down"/>, as a Redis queue reports it: every request fails with <see cref="JobQueueUnavailableException"/>.</summary>
internal sealed class OutOfReach(IJobQueue inner) : IJobQueue
{
    public volatile bool Down;

    /// <summary>Whether a submit, when down, says its request was sent and its answer lost (so its job may have been queued).</summary>
    public volatile bool AnswerLost;

    public string Name => inner.Name;

    public bool IsDurable => inner.IsDurable;

    public ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default)
        => Down ? throw Unavailable(AnswerLost ? "it may have been queued as job lost-1" : "the call was not queued and did not run", AnswerLost ? "lost-1" : null) : inner.SubmitAsync(request, observer, cancellationToken);

    public ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default)
        => Down ? throw Unavailable($"job {jobId} could not be looked up") : inner.WatchAsync(jobId, afterSequence, observer, cancellationToken);

    public ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default)
        => Down ? throw Unavailable($"job {jobId} could not be looked up") : inner.GetAsync(jobId, withOutput, cancellationToken);

    public ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default)
        => Down ? throw Unavailable("its jobs could not be listed") : inner.ListAsync(query, cancellationToken);

    public ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default)
        => Down ? throw Unavailable($"job {jobId} was not cancelled") : inner.CancelAsync(jobId, cancellationToken);

    public ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default) => inner.ReleaseAsync(jobId, cancellationToken);

    public ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) => inner.TakeAsync(workerId, leaseDuration, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();

    private JobQueueUnavailableException Unavailable(string consequence, string? jobId = null)
        => new(Name, $"The job queue \"{Name}\" cannot reach its store: {consequence}.", new IOException("secret-internals at 10.0.0.7:6379"), jobId, jobId is not null);
}

public sealed class StoreFailureTests
{
    [Fact]
    public async Task AStoreOutOfReachGetsTheCallerUnavailableWithoutTheStoresInternalsAndTheConnectionGoesOn()
    {
        var store = new OutOfReach(new InMemoryJobQueue());
        var log = new ListLogger();
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = store, LoggerFactory = log });
        server.Register(typeof(ShapeFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        string job = (await client.SubmitAsync<int>("add", 1, 2)).Id;

        store.Down = true;
        var call = await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.CallAsync<int>("add", 2, 3).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(Protocol.ErrorCodes.Unavailable, call.Code);
        Assert.Null(call.JobId); // not queued: the call can be made again
        Assert.Contains("the call was not queued and did not run", call.Message);
        var submit = await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.SubmitAsync<int>("add", 2, 3).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Null(submit.JobId);

        store.AnswerLost = true;
        var maybe = await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.CallAsync<int>("add", 2, 3).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("lost-1", maybe.JobId); // what to look up once the store is back

        // Lookups too; none of it names what only the server's log should (the store's own exception).
        IpyRpcException[] lookups =
        [
            await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.GetJobAsync(job).WaitAsync(TimeSpan.FromSeconds(20))),
            await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.ListJobsAsync().WaitAsync(TimeSpan.FromSeconds(20))),
            await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.AttachAsync<int>(job).WaitAsync(TimeSpan.FromSeconds(20))),
            await Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.CancelJobAsync(job).WaitAsync(TimeSpan.FromSeconds(20))),
        ];
        Assert.Contains($"job {job} could not be looked up", lookups[0].Message);
        Assert.All([call, submit, maybe, .. lookups], e => Assert.DoesNotContain("secret-internals", e.Message));
        Assert.Contains(log.Entries, e => e.Exception?.InnerException?.Message == "secret-internals at 10.0.0.7:6379");

        // An outage under load is a line in the log now and then, not one a call.
        await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => Assert.ThrowsAsync<IpyRpcUnavailableException>(() => client.CallAsync<int>("add", 2, 3))));
        Assert.Single(log.Entries, e => e.Message.Contains("is out of reach"));

        store.Down = false;
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
        Assert.Equal(job, (await client.GetJobAsync(job)).Id);
    }

    [Fact]
    public async Task AFailingJobStoreGetsTheCallerAnInternalErrorAndTheConnectionGoesOn()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = new UnreachableLookups(new InMemoryJobQueue()) });
        server.Register(typeof(ShapeFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        var e = await Assert.ThrowsAsync<IpyRpcException>(() => client.GetJobAsync("any").WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(Protocol.ErrorCodes.Internal, e.Code);
        Assert.Contains("unreachable", e.Message);
        await Assert.ThrowsAsync<IpyRpcException>(() => client.ListJobsAsync().WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
    }
}
