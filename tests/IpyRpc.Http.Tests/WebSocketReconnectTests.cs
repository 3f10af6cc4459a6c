using System.Net;
using System.Net.Sockets;
using IpyRpc.Http;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Http.Tests;

public sealed class WebSocketReconnectTests
{
    [Fact]
    public async Task AWebSocketClientReconnectsVisiblyAndKeepsItsSubscriptions()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        string url = $"http://127.0.0.1:{port}";
        await using var first = new IpyRpcServer();
        first.Register(typeof(ServerSide)).Register(typeof(BothWaysEvents));
        IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(first, url);

        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, new IpyRpcClientOptions
        {
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(200) },
        });
        var ticks = new System.Collections.Concurrent.ConcurrentQueue<int>();
        await client.SubscribeAsync(BothWaysEvents.Ticked, t => ticks.Enqueue(t.Number));
        var disconnected = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += info => disconnected.TrySetResult(info);
        client.Reconnecting += _ => reconnecting.TrySetResult();
        client.Reconnected += () => reconnected.TrySetResult();

        await host.DisposeAsync(); // the server goes away, saying so
        Assert.Equal(DisconnectReason.ServerStopping, (await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10))).Reason);
        await reconnecting.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(client.IsConnected);
        Task<string> waiting = client.Proxy<ServerSideClient>().Bw.Work(1); // waits for the connection to come back

        await using var second = new IpyRpcServer();
        second.Register(typeof(ServerSide)).Register(typeof(BothWaysEvents));
        await using IpyRpcHttpServer again = await IpyRpcHttpServer.StartAsync(second, url);
        await reconnected.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.True(client.IsConnected);
        Assert.Equal("done", await waiting.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal("done", await client.Proxy<ServerSideClient>().Bw.Work(1));

        // The subscription was renewed on the new server.
        DateTime until = DateTime.UtcNow.AddSeconds(10);
        while (ticks.IsEmpty && DateTime.UtcNow < until)
        {
            second.Publish(BothWaysEvents.Ticked, new Tick(42, "after reconnect"));
            await Task.Delay(50);
        }

        Assert.Contains(42, ticks);
    }

    [Fact]
    public async Task WithoutAHistoryForSubscriptionsTheEventStreamsNumbersDoNotMakeAReconnectedSubscriptionResume()
    {
        // The server keeps its events for the HTTP event stream only (EventHistory = 0): they go out numbered, and a
        // WebSocket subscription hears them as they come, but after a reconnect it is told what it may have missed.
        string url = $"http://127.0.0.1:{LoopbackPorts.Free()}";
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { EventHistory = 0 });
        server.Register(typeof(BothWaysEvents));
        IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, url);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.WebSocket, new IpyRpcClientOptions
        {
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(50), MaxDelay = TimeSpan.FromMilliseconds(200) },
        });
        var ticks = new System.Collections.Concurrent.ConcurrentQueue<int>();
        await using IpyRpcSubscription subscription = await client.SubscribeAsync(BothWaysEvents.Ticked, t => ticks.Enqueue(t.Number));
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Reconnected += () => reconnected.TrySetResult();
        server.Publish(BothWaysEvents.Ticked, new Tick(1, "before"));
        DateTime until = DateTime.UtcNow.AddSeconds(20);
        while (ticks.IsEmpty && DateTime.UtcNow < until) await Task.Delay(10);

        await host.DisposeAsync();
        server.Publish(BothWaysEvents.Ticked, new Tick(2, "while away")); // kept for event streams, not replayed to subscriptions
        await using IpyRpcHttpServer again = await IpyRpcHttpServer.StartAsync(server, url);
        await reconnected.Task.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("not_kept", subscription.LastGap?.Reason);
        server.Publish(BothWaysEvents.Ticked, new Tick(3, "after"));
        until = DateTime.UtcNow.AddSeconds(20);
        while (ticks.Count < 2 && DateTime.UtcNow < until) await Task.Delay(10);
        Assert.Equal([1, 3], ticks);
        Assert.Equal((0L, 1L), (subscription.Replayed, subscription.Gaps));
    }
}
