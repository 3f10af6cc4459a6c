using IpyRpc;
using IpyRpc.Jobs;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>
/// A ZeroMQ server hands a call to one of its in-memory queue's waiting workers; the I/O thread that received the
/// call runs that worker's continuation itself, instead of a thread-pool thread being woken for it, and then leads on
/// (no hand-over first: the server's second I/O thread takes over receiving only from a job it finds still running at
/// its next look). The job is still the worker's: the queue's concurrency holds, its listing names the worker, and a
/// job that waits leaves the server receiving.
/// </summary>
public sealed class ServerLendingTests
{
    private const string ServerThread = "IpyRpc.ZeroMq server tcp://127.0.0.1:*";

    [Fact]
    public async Task AWorkersQuickJobRunsOnTheThreadThatReceivedItWithoutHandingReceivingOver()
    {
        // Leading lazily: the I/O thread that received a call runs its quick job and goes back to the socket itself;
        // the second I/O thread is not woken for it. Handing receiving over before every job would count a hand-over
        // a call, and run none in place.
        await using var server = new IpyRpcServer();
        server.Register(typeof(ThreadFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint);
        await client.CallAsync<string>("thread.name"); // the first call compiles its path
        (long handOversBefore, long inPlaceBefore) = host.Loop.LeadCounts;
        int onIoThread = 0;
        for (int i = 0; i < 40; i++)
        {
            if (await client.CallAsync<string>("thread.name") == ServerThread) onIoThread++;
        }

        (long handOvers, long inPlace) = host.Loop.LeadCounts;
        handOvers -= handOversBefore;
        inPlace -= inPlaceBefore;
        // A job the other thread finds still running at two of its looks (a millisecond apart: a descheduled thread on
        // a busy machine) is taken over from, so not every call; most are run in place.
        Assert.True(inPlace >= 20 && onIoThread >= 20, $"{inPlace} of 40 jobs ran in place, {onIoThread} on the server's I/O thread");
        Assert.True(handOvers <= 20, $"receiving moved between the server's I/O threads {handOvers} times in 40 calls");
        // Still workers' jobs, not Inline ones.
        Assert.All(await server.Queue.ListAsync(new JobQuery { Function = "thread.name" }), j => Assert.DoesNotContain(":inline", j.Worker ?? "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheIdleThreadLooksLessOftenWhileJobsAreShortAndStillTakesOverFromOneThatWaits()
    {
        // Calls one at a time with pauses between them: the server's second I/O thread finds no job running at nearly
        // every look, so it looks less often each time, up to 16 ms apart: about 20 looks in 900 ms here. Looking every
        // millisecond, as it once did, made about 250 (a timed wait of a millisecond lasts longer on a busy machine).
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2)); // the first call compiles its path
        long looksBefore = s.Host.Loop.FollowerLooks;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; watch.ElapsedMilliseconds < 600; i++)
        {
            Assert.Equal(i + 1, await client.CallAsync<int>("add", i, 1));
            await Task.Delay(3);
        }

        long looks = s.Host.Loop.FollowerLooks - looksBefore;
        long elapsedMs = watch.ElapsedMilliseconds;
        Assert.True(looks > 0, "the second thread never looked while calls were made");
        Assert.True(looks < elapsedMs / 10, $"the second thread looked {looks} times in {elapsedMs} ms of short jobs");

        // Looking seldom, it still takes receiving over from a job that holds its thread: the other calls are answered
        // meanwhile. A job the thread pool ran (no worker was waiting to be lent the I/O thread) proves nothing, so up to
        // five tries, until one holds the I/O thread.
        bool heldIoThread = false;
        for (int attempt = 0; attempt < 5 && !heldIoThread; attempt++)
        {
            for (int i = 0; i < 20; i++)
            {
                await client.CallAsync<int>("add", i, 1);
                await Task.Delay(3); // quiet again: the second thread's looks lengthen
            }

            (long handOversBefore, _) = s.Host.Loop.LeadCounts;
            string gate = Gates.NewName("lend-after-quiet");
            Task<int> holding = client.CallAsync<int>("block", gate);
            await Gates.WaitAsync(gate + ".started");
            heldIoThread = Gates.Get(gate + ".io").Task.IsCompleted;
            for (int i = 0; i < 20; i++) Assert.Equal(i + 2, await client.CallAsync<int>("add", i, 2).WaitAsync(TimeSpan.FromSeconds(10)));
            (long handOvers, _) = s.Host.Loop.LeadCounts;
            if (heldIoThread) Assert.True(handOvers > handOversBefore, "the second thread did not take over from the job holding the I/O thread");
            Gates.Open(gate);
            Assert.Equal(1, await holding.WaitAsync(TimeSpan.FromSeconds(10)));
        }

        Assert.True(heldIoThread, "no job of five held the server's I/O thread, so none was taken over from");
    }

    [Fact]
    public async Task TheQueuesConcurrencyHoldsForJobsRunOnALentThread()
    {
        // One worker: a second call waits for the first to finish, wherever the first runs.
        await using ZmqServer s = ZmqServer.Start(serverOptions: new IpyRpcServerOptions { Concurrency = 1 });
        await using IpyRpcClient client = await s.ConnectAsync();
        string first = Gates.NewName("lend-first"), second = Gates.NewName("lend-second");
        Task<int> one = client.CallAsync<int>("wait", first);
        await Gates.WaitAsync(first + ".started");
        Task<int> two = client.CallAsync<int>("wait", second);
        await Task.Delay(300);
        Assert.False(Gates.Get(second + ".started").Task.IsCompleted, "a second job started while the only worker was busy");
        Gates.Open(first);
        await Gates.WaitAsync(second + ".started");
        Gates.Open(second);
        await Task.WhenAll(one, two).WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task AJobThatWaitsOnALentThreadLeavesTheServerReceiving()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        string gate = Gates.NewName("lend-hold");
        Task<int> holding = client.CallAsync<int>("wait", gate);
        await Gates.WaitAsync(gate + ".started");
        for (int i = 0; i < 50; i++) Assert.Equal(i + 1, await client.CallAsync<int>("add", i, 1).WaitAsync(TimeSpan.FromSeconds(10)));
        Gates.Open(gate);
        await holding.WaitAsync(TimeSpan.FromSeconds(10));
    }
}
