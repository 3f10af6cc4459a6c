using System.Collections.Concurrent;
using IpyRpc;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.BothWays;

/// <summary>
/// What every transport that keeps a connection both ways must do (in-process, ZeroMQ, WebSocket):
/// calls from the server to its clients, connection events, pushed events, streams and progress.
/// A transport's test class says how to serve and how to connect.
/// </summary>
public abstract class BothWaysContract : IAsyncLifetime
{
    protected IpyRpcServer Server { get; private set; } = null!;

    /// <summary>Starts serving <see cref="Server"/> on the transport.</summary>
    protected abstract Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server);

    /// <summary>Connects a client over the transport.</summary>
    protected abstract Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options);

    /// <summary>The transport's name as connections report it.</summary>
    protected abstract string Transport { get; }

    private IAsyncDisposable? _host;

    public async Task InitializeAsync()
    {
        Server = new IpyRpcServer();
        Server.Register(typeof(ServerSide)).Register(typeof(BothWaysEvents));
        _host = await ServeAsync(Server);
    }

    public async Task DisposeAsync()
    {
        if (_host is not null) await _host.DisposeAsync();
        await Server.DisposeAsync();
    }

    private Task<IpyRpcClient> ConnectAsync(bool exports = true, int eventBuffer = 1024)
        => ConnectAsync(new IpyRpcClientOptions { Output = (_, _) => { }, Exports = exports ? [typeof(CallerSide)] : [], EventBufferSize = eventBuffer });

    [Fact]
    public async Task TheServerCallsTheCallerBackFromInsideAFunctionWithLiveOutput()
    {
        await using IpyRpcClient client = await ConnectAsync();
        Assert.Contains(client.Exports, f => f.Name == "caller.answer");
        string said = await client.CallAsync<string>("bw.ask_caller", "life");
        Assert.Equal("answer to life | printed: thinking about life", said);
    }

    [Fact]
    public async Task TheCallersExceptionIsARemoteExceptionOnTheServer()
    {
        await using IpyRpcClient client = await ConnectAsync();
        Assert.Equal("System.InvalidOperationException: caller.fail: refused by the caller", await client.CallAsync<string>("bw.make_caller_fail"));
    }

    [Fact]
    public async Task TheServerHoldsAJobHandleForWorkItSubmittedToTheCaller()
    {
        await using IpyRpcClient client = await ConnectAsync();
        Assert.Equal("answer to a job; callback saw Succeeded; info says Succeeded; timed out: yes; cancelled: True", await client.CallAsync<string>("bw.submit_to_caller"));
    }

    [Fact]
    public async Task ACallToTheCallerTimesOutAndTheCallerIsCancelled()
    {
        await using IpyRpcClient client = await ConnectAsync();
        Assert.Equal(ErrorCodes.Timeout, await client.CallAsync<string>("bw.time_out_caller"));
    }

    [Fact]
    public async Task ACallToACallerThatLeavesFailsAsConnectionLostRatherThanWaiting()
    {
        var calling = new TaskCompletionSource<Task<int>>(TaskCreationOptions.RunContinuationsAsynchronously);
        Server.ClientConnected += c => calling.TrySetResult(c.CallAsync<int>("caller.wait"));
        IpyRpcClient client = await ConnectAsync();
        Task<int> call = await calling.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await client.PingAsync();

        // The caller's function never returns; the caller goes away. The server's call has no timeout of its own.
        await client.DisposeAsync();
        await Assert.ThrowsAsync<IpyRpcConnectionException>(() => call.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task ACallerWithoutExportsAnswersUnknownFunction()
    {
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        var e = await Assert.ThrowsAsync<RemoteException>(() => client.CallAsync<string>("bw.make_caller_fail"));
        Assert.Contains("No function is named 'caller.fail'", e.Message);
    }

    [Fact]
    public async Task ConnectedAndDisconnectedFireOnceEachWithTheReasonAndTheServerCanCallFromConnected()
    {
        var connected = new ConcurrentBag<IpyRpcConnection>();
        var disconnected = new ConcurrentQueue<(IpyRpcConnection Connection, DisconnectInfo Info)>();
        var answered = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Server.ClientConnected += c =>
        {
            connected.Add(c);
            _ = Task.Run(async () =>
            {
                try
                {
                    answered.TrySetResult(await c.Proxy<CallerSideClient>().Caller.Answer("hello from connected"));
                }
                catch (Exception e)
                {
                    answered.TrySetException(e);
                }
            });
        };
        Server.ClientDisconnected += (c, info) => disconnected.Enqueue((c, info));

        IpyRpcClient client = await ConnectAsync();
        Assert.Equal("answer to hello from connected", await answered.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        IpyRpcConnection only = Assert.Single(connected);
        Assert.Equal(Transport, only.Transport);
        Assert.Contains(Server.Connections, c => c.Id == only.Id);

        await client.DisposeAsync();
        await Eventually(() => disconnected.Count == 1);
        (IpyRpcConnection gone, DisconnectInfo why) = Assert.Single(disconnected);
        Assert.Same(only, gone);
        Assert.Equal(DisconnectReason.Closed, why.Reason);
        Assert.DoesNotContain(Server.Connections, c => c.Id == only.Id);
        var late = await Assert.ThrowsAnyAsync<IpyRpcException>(() => only.Proxy<CallerSideClient>().Caller.Answer("too late"));
        Assert.Contains("closed", late.Message, StringComparison.OrdinalIgnoreCase);
        await Task.Delay(200);
        Assert.Single(disconnected); // once, not again
    }

    [Fact]
    public async Task AStoppingServerTellsItsClientsWhy()
    {
        await using IpyRpcClient client = await ConnectAsync(new IpyRpcClientOptions { Output = (_, _) => { }, Reconnect = null });
        var why = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += info => why.TrySetResult(info);
        if (_host is not null) await _host.DisposeAsync();
        _host = null;
        await Server.DisposeAsync();
        DisconnectInfo info = await why.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DisconnectReason.ServerStopping, info.Reason);
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task AClientWhoseAccessIsRevokedIsToldSoAndDoesNotComeBack()
    {
        var connected = new TaskCompletionSource<IpyRpcConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        Server.ClientConnected += c => connected.TrySetResult(c);
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        var why = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        int reconnecting = 0;
        client.Disconnected += info => why.TrySetResult(info);
        client.Reconnecting += _ => Interlocked.Increment(ref reconnecting);

        IpyRpcConnection connection = await connected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await connection.CloseAsync("Your access was revoked.", DisconnectReason.Unauthorized);
        DisconnectInfo info = await why.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DisconnectReason.Unauthorized, info.Reason);
        Assert.Contains("revoked", info.Message);
        await Task.Delay(300);
        Assert.Equal(0, Volatile.Read(ref reconnecting));
        Assert.False(client.IsConnected);
    }

    [Fact]
    public async Task EventsCanBeReadAsAnAsyncStream()
    {
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var received = new List<Tick>();
        Task reading = Task.Run(async () =>
        {
            await foreach (Tick t in client.EventsAsync(BothWaysEvents.Ticked, stop.Token))
            {
                received.Add(t);
                if (received.Count == 3) break;
            }
        });
        int n = 0;
        while (!reading.IsCompleted && !stop.IsCancellationRequested)
        {
            Server.Publish(BothWaysEvents.Ticked, new Tick(n++, "stream"));
            await Task.Delay(20);
        }

        await reading;
        Assert.Equal(3, received.Count);
        Assert.True(received[0].Number < received[1].Number && received[1].Number < received[2].Number);
        Assert.Contains(client.Events, e => e.Name == "bw.ticked" && e.PayloadType == "Tick");
    }

    [Fact]
    public async Task AHundredSubscribersEachGetEveryEventInOrder()
    {
        const int subscribers = 100, events = 200;
        var clients = new List<IpyRpcClient>();
        var received = new List<ConcurrentQueue<int>>();
        try
        {
            for (int i = 0; i < subscribers; i++)
            {
                IpyRpcClient c = await ConnectAsync(exports: false);
                clients.Add(c);
                var queue = new ConcurrentQueue<int>();
                received.Add(queue);
                await c.SubscribeAsync(BothWaysEvents.Ticked, t => queue.Enqueue(t.Number));
            }

            await c0Other(clients[0]);
            for (int n = 0; n < events; n++) Assert.Equal(subscribers, Server.Publish(BothWaysEvents.Ticked, new Tick(n, "tick")));
            await Eventually(() => received.All(q => q.Count == events), TimeSpan.FromSeconds(30));
            foreach (ConcurrentQueue<int> q in received) Assert.Equal(Enumerable.Range(0, events), q);
        }
        finally
        {
            foreach (IpyRpcClient c in clients) await c.DisposeAsync();
        }

        // A subscription to another event hears nothing of these.
        static async Task c0Other(IpyRpcClient c) => await c.SubscribeAsync(BothWaysEvents.Other, _ => throw new InvalidOperationException("not subscribed to this"));
    }

    [Fact]
    public async Task ASlowSubscriberNeitherStallsTheServerNorDelaysTheOthers()
    {
        await using IpyRpcClient slow = await ConnectAsync(exports: false, eventBuffer: 16);
        await using IpyRpcClient fast = await ConnectAsync(exports: false);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int slowSeen = 0;
        IpyRpcSubscription slowSub = await slow.SubscribeAsync(BothWaysEvents.Ticked, async (Tick _, CancellationToken ct) =>
        {
            await gate.Task.WaitAsync(ct);
            Interlocked.Increment(ref slowSeen);
        });
        var fastSeen = new ConcurrentQueue<int>();
        await fast.SubscribeAsync(BothWaysEvents.Ticked, t => fastSeen.Enqueue(t.Number));

        // In bursts within the server's per-connection buffer (1024): the fast subscriber gets each burst
        // while the slow one has not finished its first event.
        const int events = 5000, burst = 500;
        for (int n = 0; n < events; n++)
        {
            Server.Publish(BothWaysEvents.Ticked, new Tick(n, "tick"));
            if ((n + 1) % burst == 0) await Eventually(() => fastSeen.Count == n + 1, TimeSpan.FromSeconds(30));
        }

        Assert.Equal(Enumerable.Range(0, events), fastSeen);
        Assert.Equal(0, Volatile.Read(ref slowSeen)); // still blocked while the fast one got everything

        gate.SetResult();
        await Eventually(() => slowSub.Received + slowSub.Dropped + slow.EventsDroppedByServer >= events || Volatile.Read(ref slowSeen) > 0);
        Assert.True(slowSub.Dropped + slow.EventsDroppedByServer > 0, "the slow subscriber's buffer of 16 cannot have held 5000 events");
        Assert.Equal("done", await fast.Proxy<ServerSideClient>().Bw.Work(1));
    }

    [Fact]
    public async Task AMillionItemStreamArrivesCompleteAndInOrder()
    {
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        long expected = 0;
        await foreach (long item in client.Proxy<ServerSideClient>().Bw.Count(1_000_000))
        {
            Assert.Equal(expected, item);
            expected++;
        }

        Assert.Equal(1_000_000, expected);
    }

    [Fact]
    public async Task ACallOfAStreamingFunctionGetsHowManyItemsThereWereAndIsToldWhereTheItemsAre()
    {
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        Assert.Equal(5L, await client.CallAsync<long>("bw.count", 5));
        var e = await Assert.ThrowsAsync<IpyRpcException>(() => client.CallAsync<long[]>("bw.count", 5));
        Assert.Contains("bw.count streams its items, and a call's result is only how many there were: read the items with StreamAsync<TItem>(\"bw.count\"", e.Message);
        Assert.Equal([0L, 1L], await client.StreamAsync<long>("bw.count", 2).ToListAsync());
    }

    [Fact]
    public async Task AStreamThatFailsDeliversTheItemsItMadeThenItsError()
    {
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        var items = new List<long>();
        // Made without a pause, the items are still in their batch when the function fails: they go before the error.
        var e = await Assert.ThrowsAsync<RemoteException>(async () =>
        {
            await foreach (long item in client.StreamAsync<long>("bw.count_then_fail", 5)) items.Add(item);
        });
        Assert.Equal([0L, 1L, 2L, 3L, 4L], items);
        Assert.Equal("System.InvalidOperationException", e.RemoteType);
        Assert.Contains("failed after 5 items", e.Message);
    }

    [Fact]
    public async Task StoppingTheEnumerationCancelsTheProducer()
    {
        ServerSide.ProducerStopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        int seen = 0;
        await foreach (long item in client.Proxy<ServerSideClient>().Bw.CountForever(new CallOptions { StreamWindow = 8 }))
        {
            if (++seen == 20) break;
        }

        await ServerSide.ProducerStopped.Task.WaitAsync(TimeSpan.FromSeconds(10));
        long stoppedAt = Interlocked.Read(ref ServerSide.Produced);
        await Task.Delay(300);
        Assert.Equal(stoppedAt, Interlocked.Read(ref ServerSide.Produced));
        Assert.Equal([0L, 1L, 2L], await client.Proxy<ServerSideClient>().Bw.Count(3).ToListAsync()); // the connection goes on
    }

    [Fact]
    public async Task AProducerWaitsForASlowConsumerInsteadOfFloodingIt()
    {
        ServerSide.ProducerStopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        await using IAsyncEnumerator<long> items = client.Proxy<ServerSideClient>().Bw.CountForever(new CallOptions { StreamWindow = 16 }).GetAsyncEnumerator();
        Assert.True(await items.MoveNextAsync());
        await Task.Delay(500); // the consumer reads nothing for a while
        long ahead = Interlocked.Read(ref ServerSide.Produced);
        // At most the window plus one batch (a batch goes whenever any credit is left); unthrottled it would be hundreds.
        Assert.True(ahead <= 16 + 8, $"the producer ran {ahead} items ahead of a window of 16");
    }

    [Fact]
    public async Task ProgressReportsArriveBeforeTheResult()
    {
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        var reports = new SynchronousProgress<Tick>();
        string result = await client.Proxy<ServerSideClient>().Bw.Work(5, reports);
        Assert.Equal("done", result);
        Assert.Equal([1, 2, 3, 4, 5], reports.Values.Select(t => t.Number));
    }

    [Fact]
    public async Task AFallbackGetsOnlyTheNamesNoFunctionHas()
    {
        var handled = new ConcurrentQueue<string>();
        IpyRpcFallback fallback = (call, _) =>
        {
            handled.Enqueue(call.Name);
            return ValueTask.FromResult<object?>($"{call.Name}({string.Join(",", call.Positional)})");
        };
        Server.RegisterFallback("legacy.*", fallback).RegisterFallback("bw.*", fallback);
        await using IpyRpcClient client = await ConnectAsync(exports: false);
        Assert.Equal("legacy.orders(1,2)", await client.CallAsync<string>("legacy.orders", 1, 2));
        Assert.Equal("done", await client.Proxy<ServerSideClient>().Bw.Work(1)); // a registered function wins over a fallback
        Assert.Equal("bw.nothing_here()", await client.CallAsync<string>("bw.nothing_here"));
        var unknown = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<string>("elsewhere.orders"));
        Assert.Equal(ErrorCodes.UnknownFunction, unknown.Code);
        Assert.Equal(["legacy.orders", "bw.nothing_here"], handled);
        Assert.DoesNotContain(client.Functions, f => f.Name.StartsWith("legacy.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConnectionsComeAndGoWithoutLeavingAnythingBehind()
    {
        for (int i = 0; i < 3; i++) await (await ConnectAsync()).DisposeAsync(); // warm up pools
        await Eventually(() => Server.Connections.Count == 0);
        int threadsBefore = ThreadsOutsideThePool();
        for (int i = 0; i < 30; i++)
        {
            await using IpyRpcClient c = await ConnectAsync();
            Assert.Equal("answer to q" + i, (await c.CallAsync<string>("bw.ask_caller", "q" + i)).Split(" | ")[0]);
        }

        await Eventually(() => Server.Connections.Count == 0);
        // Other test classes run beside this one and start and stop threads of their own, so the count is given time to
        // settle; a thread per connection left behind (30, or more with a transport's helpers) never would.
        int threadsAfter = 0;
        await Eventually(
            () => (threadsAfter = ThreadsOutsideThePool()) <= threadsBefore + 16,
            TimeSpan.FromSeconds(30),
            () => $"threads outside the thread pool grew from {threadsBefore} to {threadsAfter} over 30 connections");
    }

    // The thread pool grows and shrinks with the load of every test in the process (an idle pool thread lingers for 20 s),
    // so its threads say nothing about what a connection left behind.
    private static int ThreadsOutsideThePool()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        return process.Threads.Count - ThreadPool.ThreadCount;
    }

    protected static async Task Eventually(Func<bool> condition, TimeSpan? within = null, Func<string>? why = null)
    {
        DateTime until = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(10));
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail(why?.Invoke() ?? "The condition did not become true in time.");
            await Task.Delay(10);
        }
    }

    /// <summary>Records reports on the reporting thread, so their order is the order they arrived in.</summary>
    private sealed class SynchronousProgress<T> : IProgress<T>
    {
        private readonly List<T> _values = [];

        public IReadOnlyList<T> Values
        {
            get
            {
                lock (_values) return [.. _values];
            }
        }

        public void Report(T value)
        {
            lock (_values) _values.Add(value);
        }
    }
}
