using IpyRpc;

namespace IpyRpc.Tests.Calls;

/// <summary>Summary statistics of some samples.</summary>
/// <param name="Count">How many.</param>
/// <param name="Total">Their sum.</param>
public sealed record Stats(int Count, double Total);

/// <summary>Functions the captured-call tests submit, ask pointers of, and pass pointers to.</summary>
public static class CaptureFunctions
{
    private static int s_logged;

    /// <summary>How many times <c>capture.log</c> ran.</summary>
    public static int Logged => Volatile.Read(ref s_logged);

    /// <summary>Adds two integers.</summary>
    /// <param name="a">The first.</param>
    /// <param name="b">The second.</param>
    [IpyRpcExport("capture.add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Statistics of 0, 1, …, n - 1.</summary>
    /// <param name="n">How many samples.</param>
    [IpyRpcExport("capture.stats")]
    public static Stats MakeStats(int n) => new(n, Enumerable.Range(0, n).Sum());

    /// <summary>The mean the statistics describe.</summary>
    /// <param name="stats">The statistics (a value or a pointer to one).</param>
    [IpyRpcExport("capture.mean")]
    public static double Mean(Stats stats) => stats.Total / stats.Count;

    /// <summary>Counts a log line; returns nothing.</summary>
    /// <param name="line">The line.</param>
    [IpyRpcExport("capture.log")]
    public static void Log(string line) => Interlocked.Increment(ref s_logged);

    /// <summary>The numbers 1 to n, as a stream.</summary>
    /// <param name="n">Where to stop.</param>
    [IpyRpcExport("capture.upto")]
    public static async IAsyncEnumerable<int> UpTo(int n)
    {
        for (int i = 1; i <= n; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    /// <summary>Counts to n, reporting each step.</summary>
    /// <param name="n">Where to stop.</param>
    /// <param name="progress">Each step.</param>
    [IpyRpcExport("capture.count")]
    public static int Count(int n, IProgress<int> progress)
    {
        for (int i = 1; i <= n; i++) progress.Report(i);
        return n;
    }
}

/// <summary>
/// A typed proxy call written as a lambda and sent another way: submitted as a job
/// (<c>client.SubmitAsync(() =&gt; proxy.F(x))</c>) or for a pointer to its result (<c>client.AsPointerAsync</c>),
/// and a record parameter that takes the value or a pointer to one.
/// </summary>
public sealed class CapturedCallTests
{
    private static async Task<(IpyRpcServer Server, IpyRpcClient Client)> StartAsync()
    {
        var server = new IpyRpcServer().Register(typeof(CaptureFunctions));
        return (server, await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } }));
    }

    [Fact]
    public async Task ASubmittedProxyCallIsAJobWithItsArgumentsAndResult()
    {
        (IpyRpcServer server, IpyRpcClient client) = await StartAsync();
        await using (server)
        await using (client)
        {
            CaptureFunctionsClient.CaptureNamespace f = client.Proxy<CaptureFunctionsClient>().Capture;
            IpyRpcJob<int> job = await client.SubmitAsync(() => f.Add(40, 2));
            Assert.False(string.IsNullOrEmpty(job.Id));
            Assert.Equal(42, await job.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal("capture.add", (await client.GetJobAsync(job.Id)).Function);

            // Any client can attach to it by id.
            await using IpyRpcClient other = await IpyRpcClient.ConnectInProcessAsync(server);
            Assert.Equal(42, await (await other.AttachAsync<int>(job.Id)).WaitAsync(TimeSpan.FromSeconds(10)));

            // A function that returns nothing: the job's result is null.
            int before = CaptureFunctions.Logged;
            IpyRpcJob<object?> logged = await client.SubmitAsync(() => f.Log("a line"));
            Assert.Null(await logged.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(before + 1, CaptureFunctions.Logged);
        }
    }

    [Fact]
    public async Task ASubmittedProxyStreamIsAJobWhoseItemsAreReadLater()
    {
        (IpyRpcServer server, IpyRpcClient client) = await StartAsync();
        await using (server)
        await using (client)
        {
            CaptureFunctionsClient.CaptureNamespace f = client.Proxy<CaptureFunctionsClient>().Capture;
            IpyRpcJob<long> job = await client.SubmitStreamAsync(() => f.UpTo(5));
            Assert.Equal("capture.upto", (await client.GetJobAsync(job.Id)).Function);
            Assert.Equal(5L, await job.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal([1, 2, 3, 4, 5], await job.ReadItemsAsync<int>().ToListAsync());

            // Nothing is left capturing: the stream is enumerated as usual afterwards.
            Assert.Equal([1, 2], await f.UpTo(2).ToListAsync());
        }
    }

    [Fact]
    public async Task AProxyCallForAPointerLeavesTheResultWhereItWasComputedAndThePointerPassesAsTheRecord()
    {
        (IpyRpcServer server, IpyRpcClient client) = await StartAsync();
        await using (server)
        await using (client)
        {
            CaptureFunctionsClient.CaptureNamespace f = client.Proxy<CaptureFunctionsClient>().Capture;
            RemotePointer<Stats> kept = await client.AsPointerAsync(() => f.MakeStats(5, new CallOptions { PointerTimeToLive = TimeSpan.FromMinutes(3) }));
            Assert.Equal(1, server.Data.Count);
            Assert.InRange(kept.ExpiresAt!.Value, DateTimeOffset.UtcNow.AddMinutes(2), DateTimeOffset.UtcNow.AddMinutes(4));
            Assert.Equal(new Stats(5, 10), await client.FetchAsync(kept));

            // The proxy's record parameter takes the pointer as it takes the value: resolved where the function runs.
            Assert.Equal(2.0, await f.Mean(kept));
            Assert.Equal(2.0, await f.Mean(new Stats(5, 10)));
        }
    }

    [Fact]
    public async Task ALambdaThatIsNotExactlyOneProxyCallIsRefusedAndSendsNothing()
    {
        (IpyRpcServer server, IpyRpcClient client) = await StartAsync();
        await using (server)
        await using (client)
        {
            CaptureFunctionsClient.CaptureNamespace f = client.Proxy<CaptureFunctionsClient>().Capture;
            int before = CaptureFunctions.Logged;

            // Awaiting inside the lambda would change what is submitted: refused, and the call it recorded is not sent.
            var awaited = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitAsync(async () => await f.Log("no")));
            Assert.Contains("exactly one typed proxy call", awaited.Message);
            var changed = await Assert.ThrowsAsync<ArgumentException>(() => client.AsPointerAsync(async () => await f.Add(1, 2) + 1));
            Assert.Contains("exactly one typed proxy call", changed.Message);
            var none = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitAsync(() => Task.FromResult(3)));
            Assert.Contains("made no call", none.Message);
            var two = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitAsync(() => { _ = f.Log("one"); return f.Add(1, 2); }));
            Assert.Contains("exactly one", two.Message);

            // Through another connection: the call belongs to that proxy's peer.
            await using IpyRpcClient other = await IpyRpcClient.ConnectInProcessAsync(server);
            var elsewhere = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitAsync(() => other.Proxy<CaptureFunctionsClient>().Capture.Add(1, 2)));
            Assert.Contains("another connection", elsewhere.Message);

            // A job reports its progress to no one: passing an IProgress to a submitted call is refused, not ignored.
            var progress = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitAsync(() => f.Count(3, new Progress<int>())));
            Assert.Contains("IProgress", progress.Message);

            // A stream enumerated inside a submitted lambda is not the lambda's one call: its call is not started.
            var stream = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitAsync(async () =>
            {
                await foreach (int n in f.UpTo(3)) return n;
                return 0;
            }));
            Assert.Contains("exactly one typed proxy call", stream.Message);
            // A stream submitted is exactly its one call, as it is.
            var notAStream = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitStreamAsync(() => AsyncEnumerable.Range(1, 3)));
            Assert.Contains("exactly one streaming typed proxy call", notAStream.Message);
            var filtered = await Assert.ThrowsAsync<ArgumentException>(() => client.SubmitStreamAsync(() => f.UpTo(3).Where(n => n > 1)));
            Assert.Contains("exactly one streaming typed proxy call", filtered.Message);

            await Task.Delay(100);
            Assert.Equal(before, CaptureFunctions.Logged);
            Assert.Empty(await client.ListJobsAsync());

            // Nothing is left capturing: the next calls are made as usual.
            Assert.Equal(3, await f.Add(1, 2));
            var steps = new List<int>();
            Assert.Equal(3, await f.Count(3, new SynchronousProgress(steps)));
            Assert.Equal([1, 2, 3], steps);
        }
    }

    private sealed class SynchronousProgress(List<int> steps) : IProgress<int>
    {
        public void Report(int value)
        {
            lock (steps) steps.Add(value);
        }
    }
}
