using System.Collections.Concurrent;
using IpyRpc;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.BothWays;

/// <summary>The functions of the servers the reconnect contract restarts: they count how often each caller's calls ran.</summary>
public static class RestartFunctions
{
    private static readonly ConcurrentDictionary<string, int> s_runs = new();

    /// <summary>How many times calls tagged <paramref name="tag"/> ran, on every server.</summary>
    public static int Runs(string tag) => s_runs.GetValueOrDefault(tag);

    /// <summary>Adds one to a number, counting the run under a tag.</summary>
    /// <param name="tag">Whose call this is.</param>
    /// <param name="x">The number.</param>
    [IpyRpcExport("restart.add_one")]
    public static int AddOne(string tag, int x)
    {
        s_runs.AddOrUpdate(tag, 1, (_, n) => n + 1);
        return x + 1;
    }

    /// <summary>Counts up to a number, counting the run under a tag.</summary>
    /// <param name="tag">Whose call this is.</param>
    /// <param name="count">How many items.</param>
    [IpyRpcExport("restart.count")]
    public static async IAsyncEnumerable<int> Count(string tag, int count)
    {
        s_runs.AddOrUpdate(tag, 1, (_, n) => n + 1);
        for (int i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }
}

/// <summary>The event the reconnect contract's servers publish.</summary>
public static class RestartEvents
{
    /// <summary>A number, published by the test.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<int> Ticked = new("restart.ticked");
}

/// <summary>
/// What a client does when its server restarts, on every transport that dials again (ZeroMQ, WebSocket, HTTP
/// requests): a call made while the server is away waits for it and is answered by the next one, once; a call that
/// cannot wait longer fails saying it was not sent. The servers require a shared secret, so a call can never slip in
/// before the new connection has authenticated. A transport's test class says how to serve at a fixed address.
/// </summary>
public abstract class ReconnectContract
{
    protected const string Secret = "restart-secret";

    /// <summary>Serves <paramref name="server"/> at this test's address (the same every time: a restart).</summary>
    protected abstract Task<IAsyncDisposable> ServeAsync(IpyRpcServer server);

    /// <summary>Connects a client to this test's address.</summary>
    protected abstract Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options);

    /// <summary>Whether the transport carries events (HTTP requests do not: the server cannot speak first).</summary>
    protected virtual bool CarriesEvents => true;

    /// <summary>A free port on loopback for a test's address.</summary>
    protected static int FreePort() => LoopbackPorts.Free();

    private sealed class Running(IpyRpcServer server, IAsyncDisposable host) : IAsyncDisposable
    {
        public IpyRpcServer Server => server;

        public async ValueTask DisposeAsync()
        {
            await host.DisposeAsync();
            await server.DisposeAsync();
        }
    }

    private async Task<Running> StartAsync()
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = Secret });
        server.Register(typeof(RestartFunctions)).Register(typeof(RestartEvents));
        return new Running(server, await ServeAsync(server));
    }

    private Task<IpyRpcClient> ConnectAsync(TimeSpan? waitForReconnect = null) => ConnectAsync(new IpyRpcClientOptions
    {
        SharedSecret = Secret,
        Output = (_, _) => { },
        Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(50), WaitForReconnect = waitForReconnect ?? TimeSpan.FromSeconds(30) },
    });

    [Fact]
    public async Task ACallMadeWhileTheServerIsAwayWaitsAndTheNextServerAnswersItOnce()
    {
        string tag = Guid.NewGuid().ToString("N");
        IAsyncDisposable first = await StartAsync();
        await using IpyRpcClient client = await ConnectAsync();
        await using IpyRpcClient patient = await ConnectAsync(waitForReconnect: Timeout.InfiniteTimeSpan);
        var dialling = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Reconnecting += _ => dialling.TrySetResult();
        Assert.Equal(2, await client.CallAsync<int>("restart.add_one", tag, 1));
        await first.DisposeAsync();

        // Made while the client dials again (over ZeroMQ a dial succeeds at once and the hello waits for the server): the
        // calls wait for the new connection to be authenticated, never going out ahead of it.
        await dialling.Task.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }); // over HTTP requests nothing dials yet
        await Task.Delay(100);
        Task<int> waiting = client.CallAsync<int>("restart.add_one", tag, 10);
        Task<List<int>> stream = client.StreamAsync<int>("restart.count", tag, 3).ToListAsync().AsTask();
        Task<int> endless = patient.CallAsync<int>("restart.add_one", tag, 20);
        await Task.Delay(500);
        Assert.False(waiting.IsCompleted, waiting.Exception?.ToString());
        Assert.False(stream.IsCompleted, stream.Exception?.ToString());

        await using IAsyncDisposable second = await StartAsync();
        Assert.Equal(11, await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal([0, 1, 2], await stream.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(21, await endless.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(4, RestartFunctions.Runs(tag)); // one before the restart, and each waiting call once after it
        Assert.True(client.IsConnected);
    }

    [Fact]
    public async Task ACallRightAfterARestartIsAnsweredWithoutAnError()
    {
        string tag = Guid.NewGuid().ToString("N");
        IAsyncDisposable first = await StartAsync();
        await using IpyRpcClient client = await ConnectAsync();
        Assert.Equal(2, await client.CallAsync<int>("restart.add_one", tag, 1));
        await first.DisposeAsync();
        await using IAsyncDisposable second = await StartAsync();

        // However far the client got in noticing the restart (not at all, over HTTP requests), the calls are answered.
        int[] answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => client.CallAsync<int>("restart.add_one", tag, i))).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(1, 20), answers);
        Assert.Equal(21, RestartFunctions.Runs(tag));
    }

    [Fact]
    public async Task ACallThatCannotWaitLongerFailsSayingItWasNotSent()
    {
        string tag = Guid.NewGuid().ToString("N");
        IAsyncDisposable first = await StartAsync();
        await using IpyRpcClient client = await ConnectAsync();
        await using IpyRpcClient impatient = await ConnectAsync(waitForReconnect: TimeSpan.Zero);
        Assert.Equal(2, await client.CallAsync<int>("restart.add_one", tag, 1));
        await first.DisposeAsync();

        // Its own timeout is shorter than the wait for the server.
        var late = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => client.CallAsync<int>("restart.add_one", [tag, 2], new CallOptions { Timeout = TimeSpan.FromMilliseconds(400) }).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(late.NotDelivered, late.Message);
        Assert.Matches("not sent|never reached the server", late.Message);

        // Told not to wait.
        var now = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => impatient.CallAsync<int>("restart.add_one", tag, 3).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(now.NotDelivered, now.Message);
        Assert.Equal(ErrorCodes.ConnectionLost, now.Code);

        await using IAsyncDisposable second = await StartAsync();
        Assert.Equal(5, await client.CallAsync<int>("restart.add_one", tag, 4).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(2, RestartFunctions.Runs(tag)); // the two that failed never ran anywhere
    }

    [Fact]
    public async Task ASubscriptionMadeWhileTheServerIsAwayIsMadeWithTheNextServer()
    {
        IAsyncDisposable first = await StartAsync();
        await using IpyRpcClient client = await ConnectAsync();
        Assert.Equal(2, await client.CallAsync<int>("restart.add_one", Guid.NewGuid().ToString("N"), 1));
        await first.DisposeAsync();

        var ticks = new ConcurrentQueue<int>();
        if (!CarriesEvents)
        {
            // Refused at once, for what it is, and not renewed at the next connection (which would then fail for it).
            var refused = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => client.SubscribeAsync(RestartEvents.Ticked, ticks.Enqueue));
            Assert.Contains("both ways", refused.Message);
            await using Running back = await StartAsync();
            Assert.Equal(4, await client.CallAsync<int>("restart.add_one", Guid.NewGuid().ToString("N"), 3).WaitAsync(TimeSpan.FromSeconds(30)));
            return;
        }

        Task<IpyRpcSubscription> subscribing = client.SubscribeAsync(RestartEvents.Ticked, ticks.Enqueue); // waits, as calls do
        await Task.Delay(300);
        Assert.False(subscribing.IsCompleted, subscribing.Exception?.ToString());
        await using Running second = await StartAsync();

        await using IpyRpcSubscription subscription = await subscribing.WaitAsync(TimeSpan.FromSeconds(30));
        DateTime until = DateTime.UtcNow.AddSeconds(20);
        while (ticks.IsEmpty && DateTime.UtcNow < until)
        {
            second.Server.Publish(RestartEvents.Ticked, 7);
            await Task.Delay(20);
        }

        Assert.Contains(7, ticks);
    }
}
