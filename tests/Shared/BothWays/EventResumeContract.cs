using System.Collections.Concurrent;
using IpyRpc;

namespace IpyRpc.Tests.BothWays;

/// <summary>
/// What a client's subscriptions hear across a reconnect, on every transport that carries events and dials again
/// (ZeroMQ, WebSocket): a server that keeps a history of its events (<see cref="IpyRpcServerOptions.EventHistory"/>)
/// replays what each subscription missed, once and in order, before the live ones; when it cannot replay everything
/// (it keeps fewer, or it is another server or a restarted one, or it keeps none) the subscription is told.
/// </summary>
public abstract class EventResumeContract
{
    protected const string Secret = "resume-secret";

    /// <summary>Serves <paramref name="server"/> at this test's address (the same every time).</summary>
    protected abstract Task<IAsyncDisposable> ServeAsync(IpyRpcServer server);

    /// <summary>Connects a client to this test's address.</summary>
    protected abstract Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options);

    /// <summary>A free port on loopback for a test's address.</summary>
    protected static int FreePort() => LoopbackPorts.Free();

    private Task<IpyRpcClient> ConnectAsync() => ConnectAsync(new IpyRpcClientOptions
    {
        SharedSecret = Secret,
        Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(50) },
    });

    private sealed class Running(IpyRpcServer server, IAsyncDisposable host) : IAsyncDisposable
    {
        public IpyRpcServer Server => server;

        public async ValueTask DisposeAsync()
        {
            await host.DisposeAsync();
            await server.DisposeAsync();
        }
    }

    private async Task<Running> StartAsync(int eventHistory = 256)
    {
        IpyRpcServer server = NewServer(new IpyRpcServerOptions { SharedSecret = Secret, EventHistory = eventHistory });
        return new Running(server, await ServeAsync(server));
    }

    private static IpyRpcServer NewServer(IpyRpcServerOptions options)
    {
        var server = new IpyRpcServer(options);
        server.Register(typeof(RestartFunctions)).Register(typeof(RestartEvents));
        return server;
    }

    // Waits for a condition the test's events make true (20 s at most, then says what it waited for).
    private static async Task EventuallyAsync(Func<bool> condition, Func<string> what)
    {
        DateTime until = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > until) Assert.Fail("Waited 20 s for " + what());
            await Task.Delay(10);
        }
    }

    // A client's view of its connection going and coming back.
    private sealed class Watch
    {
        public Watch(IpyRpcClient client)
        {
            client.Disconnected += _ => Disconnected.TrySetResult();
            client.Reconnected += () => Reconnected.TrySetResult();
        }

        public TaskCompletionSource Disconnected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Reconnected { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [Fact]
    public async Task SubscriptionsHearWhatWasPublishedWhileTheConnectionWasDownOnceAndInOrder()
    {
        // The server stays up (and keeps its history); only its listener goes and comes back, while one thread publishes
        // throughout: before the drop, while the client is away, and while it subscribes again (live events racing the
        // replay). Two subscriptions whose patterns both match the event each hear every number once, in order.
        await using IpyRpcServer server = NewServer(new IpyRpcServerOptions { SharedSecret = Secret, EventHistory = 100_000, EventBufferSize = 100_000 });
        IAsyncDisposable host = await ServeAsync(server);
        await using IpyRpcClient client = await ConnectAsync(new IpyRpcClientOptions
        {
            SharedSecret = Secret,
            EventBufferSize = 100_000,
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(50) },
        });
        var typed = new ConcurrentQueue<int>();
        var globbed = new ConcurrentQueue<int>();
        await using IpyRpcSubscription exact = await client.SubscribeAsync(RestartEvents.Ticked, typed.Enqueue);
        await using IpyRpcSubscription glob = await client.SubscribeAsync("restart.*", e => globbed.Enqueue(Convert.ToInt32(e.Payload)));
        var watch = new Watch(client);
        using var stop = new CancellationTokenSource();
        int published = 0;
        Task publisher = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                server.Publish(RestartEvents.Ticked, published);
                if (++published % 4 == 0) await Task.Delay(1);
            }
        });
        try
        {
            await EventuallyAsync(() => globbed.Count >= 200, () => $"200 events before the drop (heard {globbed.Count})");
            await host.DisposeAsync();
            await watch.Disconnected.Task.WaitAsync(TimeSpan.FromSeconds(20));
            int away = Volatile.Read(ref published);
            await EventuallyAsync(() => Volatile.Read(ref published) >= away + 200, () => "200 events published while away");
            host = await ServeAsync(server);
            await watch.Reconnected.Task.WaitAsync(TimeSpan.FromSeconds(30));
            int back = Volatile.Read(ref published);
            await EventuallyAsync(() => Volatile.Read(ref published) >= back + 200, () => "200 events published after the reconnect");
        }
        finally
        {
            stop.Cancel();
            await publisher;
        }

        await EventuallyAsync(() => typed.Count >= published && globbed.Count >= published, () => $"all {published} events (heard {typed.Count} and {globbed.Count})");
        Assert.Equal(Enumerable.Range(0, published), typed);
        Assert.Equal(Enumerable.Range(0, published), globbed);
        // Each heard the 200 or more published while it was away from the replay (the pattern asked for later, more).
        Assert.True(exact.Replayed >= 200 && glob.Replayed >= 200, $"replayed {exact.Replayed} and {glob.Replayed}");
        Assert.Equal((0L, 0L), (exact.Gaps, glob.Gaps));
        Assert.Equal((0L, 0L), (exact.Dropped, glob.Dropped));
        await host.DisposeAsync();
    }

    [Fact]
    public async Task ASubscriptionIsToldWhenTheServerNoLongerKeepsEverythingItMissed()
    {
        await using IpyRpcServer server = NewServer(new IpyRpcServerOptions { SharedSecret = Secret, EventHistory = 4 });
        IAsyncDisposable host = await ServeAsync(server);
        await using IpyRpcClient client = await ConnectAsync();
        var heard = new ConcurrentQueue<int>();
        var gaps = new ConcurrentQueue<(EventGap Gap, int[] HeardBefore)>();
        await using IpyRpcSubscription subscription = await client.SubscribeAsync(RestartEvents.Ticked, heard.Enqueue);
        subscription.Gap += (_, gap) => gaps.Enqueue((gap, [.. heard]));
        var watch = new Watch(client);
        for (int i = 0; i < 3; i++) server.Publish(RestartEvents.Ticked, i);
        await EventuallyAsync(() => heard.Count == 3, () => "the first three");

        await host.DisposeAsync();
        await watch.Disconnected.Task.WaitAsync(TimeSpan.FromSeconds(20));
        for (int i = 3; i < 13; i++) server.Publish(RestartEvents.Ticked, i); // ten while away; the server keeps four
        await using IAsyncDisposable again = await ServeAsync(server);
        await watch.Reconnected.Task.WaitAsync(TimeSpan.FromSeconds(30));
        server.Publish(RestartEvents.Ticked, 13);

        await EventuallyAsync(() => heard.Count == 8, () => $"the four kept and the live one (heard {string.Join(",", heard)})");
        Assert.Equal([0, 1, 2, 9, 10, 11, 12, 13], heard);
        (EventGap told, int[] heardBefore) = Assert.Single(gaps);
        Assert.Equal([0, 1, 2], heardBefore); // told before the events replayed are handed over
        Assert.Equal("expired", told.Reason);
        Assert.Contains("keeps its last 4 events", told.Message);
        Assert.Equal(told, subscription.LastGap);
        Assert.Equal((1L, 4L), (subscription.Gaps, subscription.Replayed));
    }

    [Theory]
    [InlineData(256, "unknown_id")]
    [InlineData(0, "not_kept")]
    public async Task ASubscriptionRenewedWithAnotherServerIsToldItMayHaveMissedEvents(int nextHistory, string reason)
    {
        Running first = await StartAsync();
        await using IpyRpcClient client = await ConnectAsync();
        var heard = new ConcurrentQueue<int>();
        await using IpyRpcSubscription subscription = await client.SubscribeAsync(RestartEvents.Ticked, heard.Enqueue);
        var watch = new Watch(client);
        first.Server.Publish(RestartEvents.Ticked, 1);
        await EventuallyAsync(() => heard.Count == 1, () => "the first event");

        await first.DisposeAsync(); // the server restarts: its history goes with it
        await using Running second = await StartAsync(nextHistory);
        await watch.Reconnected.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await EventuallyAsync(() => subscription.LastGap is not null, () => "the gap to be told");
        Assert.Equal(reason, subscription.LastGap!.Reason);
        Assert.Equal(0, subscription.Replayed);

        second.Server.Publish(RestartEvents.Ticked, 2); // and it goes on with the live ones
        await EventuallyAsync(() => heard.Count == 2, () => "the live event");
        Assert.Equal([1, 2], heard);
    }
}
