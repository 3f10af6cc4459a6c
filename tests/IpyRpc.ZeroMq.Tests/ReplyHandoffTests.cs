using IpyRpc;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>
/// A ZeroMQ client runs a caller's continuation on the I/O thread that received the reply (no thread-pool wake-up on
/// the way back); its second I/O thread, which waits without spinning, takes over receiving from a continuation it
/// finds still running when it next looks (several replies that arrived together have their continuations run in turn, and
/// the ones not yet begun go to the thread pool when the other thread takes over). These tests prove it happens, and that
/// it never costs the connection its receiving: a continuation that blocks, waits synchronously for another call (one of
/// its own batch, too), or computes for long leaves the client answering others. (That a reply is never overtaken by the connection's
/// end, held as it is until the receiving round is over, is ZeroMqRobustnessTests' graceful shutdown.)
/// </summary>
public sealed class ReplyHandoffTests
{
    private const string ClientThread = "IpyRpc.ZeroMq client ";

    private static bool OnClientIoThread() => Thread.CurrentThread.Name?.StartsWith(ClientThread, StringComparison.Ordinal) == true;

    [Fact]
    public async Task ACallersContinuationRunsOnTheClientsIoThreadNotTheThreadPool()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        int lent = await Task.Run(async () =>
        {
            int onIoThread = 0;
            for (int i = 0; i < 100; i++)
            {
                Assert.Equal(i + 1, await client.CallAsync<int>("add", i, 1).ConfigureAwait(false));
                if (OnClientIoThread()) onIoThread++;
            }

            return onIoThread;
        });

        // Each continuation runs where its reply was received, unless the other I/O thread was still busy (then the pool
        // runs it: on a busy machine a continuation descheduled for a millisecond is taken over from, and the next may
        // find no thread free to take over from it). With the lending broken, none would.
        Assert.True(lent >= 20, $"only {lent} of 100 continuations ran on the client's I/O thread");
    }

    [Fact]
    public async Task AContinuationThatWaitsSynchronouslyForAnotherCallGetsItsReply()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        int blockedOnIoThread = await Task.Run(async () =>
        {
            int blocked = 0;
            for (int i = 0; i < 20; i++)
            {
                await client.CallAsync<int>("add", 1, 1).ConfigureAwait(false);
                if (OnClientIoThread()) blocked++;
                // Blocking the lent I/O thread: the other one receives this reply and, with no thread left to take over
                // receiving from it, hands the continuation to the thread pool rather than to itself.
                Task<int> call = client.CallAsync<int>("add", i, 2);
                Assert.True(call.Wait(TimeSpan.FromSeconds(10)), $"call {i} never answered while a continuation blocked");
                Assert.Equal(i + 2, call.Result);
            }

            return blocked;
        });
        Assert.True(blockedOnIoThread > 0, "no continuation ran on the client's I/O thread, so none blocked it");
    }

    [Fact]
    public async Task AContinuationThatComputesForLongDoesNotStopTheClientReceiving()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        using var release = new ManualResetEventSlim();
        var holding = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task slow = Task.Run(async () =>
        {
            await client.CallAsync<int>("add", 1, 1).ConfigureAwait(false);
            holding.SetResult(OnClientIoThread());
            release.Wait(TimeSpan.FromSeconds(30)); // holds whichever thread ran the continuation (the lent I/O thread, usually)
        });
        await holding.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // Meanwhile other calls on the same connection are answered, many of them.
        for (int i = 0; i < 50; i++) Assert.Equal(i + 2, await client.CallAsync<int>("add", i, 2).WaitAsync(TimeSpan.FromSeconds(10)));
        release.Set();
        await slow.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task EveryContinuationThatBlocksIsTakenOverFromAndItsThreadReceivesAgainAfterwards()
    {
        // The client's I/O thread runs a caller's continuation without handing receiving over first; the other thread
        // takes over from one it finds still running. Each round here blocks a continuation until other calls on the
        // connection have been answered, so the threads swap roles round after round (the blocked one, released,
        // becomes the one that waits to take over), and a round whose continuation the thread pool ran proves nothing:
        // twelve rounds at least, and more (up to forty) until three have blocked an I/O thread.
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        int blockedOnIoThread = 0, rounds = 0;
        for (int round = 0; round < 40 && (round < 12 || blockedOnIoThread < 3); round++, rounds++)
        {
            using var answered = new ManualResetEventSlim();
            (Task blocker, bool onIoThread) = await BlockAContinuationAsync(client, answered, "the other calls were never answered while this continuation blocked");
            if (onIoThread) blockedOnIoThread++;

            for (int i = 0; i < 5; i++) Assert.Equal(round + i, await client.CallAsync<int>("add", round, i).WaitAsync(TimeSpan.FromSeconds(10)));
            answered.Set();
            await blocker.WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.True(blockedOnIoThread >= 3, $"only {blockedOnIoThread} of {rounds} continuations blocked the client's I/O thread");
        Assert.Equal(7, await client.CallAsync<int>("add", 3, 4).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AContinuationThatWaitsForAnotherOfItsBatchOfRepliesGetsItAndEveryCallerGoesOn()
    {
        // Replies that arrive together have their continuations run in turn on the I/O thread that received them. One
        // that blocks until all the others have run must not wait for ever behind itself: the other I/O thread takes
        // over receiving and queues the rest of the batch to the thread pool. Eight calls wait on the server and are
        // released at once, so their replies come together; whichever continuation runs first waits for the others.
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        const int Calls = 8;
        int firstOnIoThread = 0;
        for (int round = 0; round < 10; round++)
        {
            string[] gates = [.. Enumerable.Range(0, Calls).Select(i => Gates.NewName($"batch-{round}-{i}"))];
            int ran = 0;
            using var all = new ManualResetEventSlim();
            Task[] callers = [.. gates.Select(gate => Task.Run(async () =>
            {
                await client.CallAsync<int>("wait", gate).ConfigureAwait(false);
                bool onIoThread = OnClientIoThread();
                int order = Interlocked.Increment(ref ran);
                if (order == Calls) all.Set();
                if (order != 1) return;
                if (onIoThread) Interlocked.Increment(ref firstOnIoThread);
                Assert.True(all.Wait(TimeSpan.FromSeconds(10)), "the other continuations never ran while the first one waited for them");
            }))];
            foreach (string gate in gates) await Gates.WaitAsync(gate + ".started");
            foreach (string gate in gates) Gates.Open(gate);
            await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(20));
        }

        Assert.True(firstOnIoThread > 0, "no first continuation ran on the client's I/O thread, so none blocked it");
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AContinuationOfABatchThatWaitsSynchronouslyForItsOwnNextCallGetsItsReply()
    {
        // The messages that a batch's continuations send are held until the batch ends (a few at a time), so that they go
        // out together. A continuation that sends a call and then blocks until its reply comes must not wait for ever
        // behind its own held message: the other I/O thread takes over from it and sends what was held. Every other round
        // the continuation first computes long enough to be taken over from, and only then sends: its message must not be
        // held by a thread that no longer leads. Eight calls wait on the server and are released at once, so their replies
        // come together; the first continuation to run does this, the others return. The client sends no heartbeats here:
        // one would send whatever was held (every five seconds), hiding a message held for good.
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync(new IpyRpcClientOptions { Output = (_, _) => { }, HeartbeatInterval = null });
        const int Calls = 8;
        int firstOnIoThread = 0;
        for (int round = 0; round < 10; round++)
        {
            string[] gates = [.. Enumerable.Range(0, Calls).Select(i => Gates.NewName($"held-{round}-{i}"))];
            int ran = 0;
            bool computeFirst = round % 2 == 1;
            int expected = round + 100;
            Task[] callers = [.. gates.Select(gate => Task.Run(async () =>
            {
                await client.CallAsync<int>("wait", gate).ConfigureAwait(false);
                if (Interlocked.Increment(ref ran) != 1) return;
                if (OnClientIoThread()) Interlocked.Increment(ref firstOnIoThread);
                if (computeFirst) Thread.Sleep(50); // the other I/O thread takes over within about 17 ms (its looks come at most 16 ms apart)
                Task<int> next = client.CallAsync<int>("add", round, 100);
                Assert.True(next.Wait(TimeSpan.FromSeconds(10)), $"round {round}: a call sent from a batch's continuation was never answered while that continuation waited for it");
                Assert.Equal(expected, next.Result);
            }))];
            foreach (string gate in gates) await Gates.WaitAsync(gate + ".started");
            foreach (string gate in gates) Gates.Open(gate);
            await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(30));
        }

        Assert.True(firstOnIoThread > 0, "no first continuation ran on the client's I/O thread, so none was held");
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    /// <summary>
    /// Makes a call whose continuation blocks the thread that ran it (the client's I/O thread that received the reply,
    /// usually) until <paramref name="release"/> is set; returns the blocked caller, and whether it blocks the I/O thread.
    /// </summary>
    private static async Task<(Task Blocker, bool OnIoThread)> BlockAContinuationAsync(IpyRpcClient client, ManualResetEventSlim release, string unreleased)
    {
        var blocking = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task blocker = Task.Run(async () =>
        {
            await client.CallAsync<int>("add", 1, 1).ConfigureAwait(false);
            blocking.SetResult(OnClientIoThread());
            Assert.True(release.Wait(TimeSpan.FromSeconds(20)), unreleased);
        });
        return (blocker, await blocking.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task RepliesThatArriveWhileNoThreadIsFreeToTakeOverAreAllDelivered()
    {
        // A continuation blocks the thread that received its reply, and the other thread takes over receiving: none is
        // left to take over from it. Two calls are then in flight at once, and nothing else is sent while their replies
        // come. The receiving thread takes one reply at a time when replies have been coming one by one (asking for a
        // second costs a system call), hands its continuation to the thread pool (no thread to lend), and must ask the
        // socket for more before it waits: libzmq signals a new message only to a reader that has found its queue empty.
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        int blockedOnIoThread = 0, rounds = 0;
        for (int round = 0; round < 40 && (round < 12 || blockedOnIoThread < 3); round++, rounds++) // until three blocked an I/O thread
        {
            for (int i = 0; i < 5; i++) await client.CallAsync<int>("add", i, i); // replies one by one
            using var answered = new ManualResetEventSlim();
            (Task blocker, bool onIoThread) = await BlockAContinuationAsync(client, answered, "the two calls were never answered while this continuation blocked");
            if (onIoThread) blockedOnIoThread++;
            await Task.Delay(40); // the other thread has taken over from the blocked one (its looks come at most 16 ms apart)

            Task<int> first = client.CallAsync<int>("add", round, 1), second = client.CallAsync<int>("add", round, 2);
            // Without that look, the second reply waited until something else woke the socket: seconds.
            int[] sums = await Task.WhenAll(first, second).WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal([round + 1, round + 2], sums);
            answered.Set();
            await blocker.WaitAsync(TimeSpan.FromSeconds(10));
        }

        Assert.True(blockedOnIoThread >= 3, $"only {blockedOnIoThread} of {rounds} continuations blocked the client's I/O thread");
    }

    [Fact]
    public async Task ManyCallersAtOnceAllGetTheirOwnReplies() // as many as the server lets one connection have in flight
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        int[] sums = await Task.WhenAll(Enumerable.Range(0, 32).Select(lane => Task.Run(async () =>
        {
            int sum = 0;
            for (int i = 0; i < 50; i++) sum += await client.CallAsync<int>("add", lane, i).ConfigureAwait(false) - lane;
            return sum;
        })));
        Assert.All(sums, sum => Assert.Equal(Enumerable.Range(0, 50).Sum(), sum));
    }

    [Fact]
    public async Task DisposingTheClientFromALentThreadReturns()
    {
        await using ZmqServer s = ZmqServer.Start();
        IpyRpcClient client = await s.ConnectAsync();
        bool lent = await Task.Run(async () =>
        {
            for (int i = 0; i < 50; i++)
            {
                await client.CallAsync<int>("add", 1, 1).ConfigureAwait(false);
                if (!OnClientIoThread()) continue;
                // The other I/O thread leads now; it closes the socket while this one, lent, waits for it.
                await client.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
                return true;
            }

            return false;
        });

        Assert.True(lent, "no continuation ran on the client's I/O thread");
        await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<int>("add", 1, 1));
    }

    [Fact]
    public async Task ACallerAtTheConnectionsLimitIsNotRefusedByTheCallItJustGotTheReplyTo()
    {
        // The server gives a call's room back before its reply goes, so a caller answering each reply with its next
        // call at once (here, from the I/O thread that received the reply) never finds the connection full.
        await using ZmqServer s = ZmqServer.Start(serverOptions: new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 1 });
        await using IpyRpcClient client = await s.ConnectAsync();
        int answered = await Task.Run(async () =>
        {
            int n = 0;
            for (int i = 0; i < 500; i++) n += await client.CallAsync<int>("add", 0, 1).ConfigureAwait(false);
            return n;
        });
        Assert.Equal(500, answered);
    }
}
