using IpyRpc;
using IpyRpc.Formatting;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Tests.Calls;

/// <summary>What a caller learns about a request that certainly never reached the other side.</summary>
public sealed class UndeliveredTests
{
    [Fact]
    public async Task AServersCloseSaysHowFarItReadAndRequestsAfterThatFailAsNeverDelivered()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ShapeFunctions));
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair();
        using var stop = new CancellationTokenSource();
        Task serving = server.ServeAsync(serverEnd, stop.Token);
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 7, Function = "add", Parts = [new IpyRpcArguments().Add(1, Formatters.Int32).Add(2, Formatters.Int32).Encode(Serialization.MessagePack)] });
        Assert.Equal(MessageKind.Result, (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!.Kind);
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Describe, Id = 9 });
        Assert.Equal(MessageKind.Result, (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!.Kind);
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 12 }); // runs nothing: not counted as read
        Assert.Equal(MessageKind.Pong, (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!.Kind);

        stop.Cancel(); // the server stops serving this connection: it says why, and how far it read
        IpyRpcMessage close = (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!;
        Assert.Equal(MessageKind.Close, close.Kind);
        DisconnectInfo info = DisconnectInfo.FromMessage(close, "The server");
        Assert.Equal(DisconnectReason.ServerStopping, info.Reason);
        Assert.Equal(9UL, info.ReadUpTo);
        await serving;

        // A caller's side of the same close: what the server read may have run; what it did not read did not.
        var link = new PeerLink((_, _) => default, "the server");
        Task<IpyRpcMessage> read = link.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Call, Function = "add" }, "add", new PendingRequest(), CancellationToken.None, null);
        Task<IpyRpcMessage> unread = link.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Call, Function = "add" }, "add", new PendingRequest(), CancellationToken.None, null);
        link.Close(info.ToException("the server"), readUpTo: 1);
        var mayHaveRun = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => read);
        var didNotRun = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => unread);
        Assert.False(mayHaveRun.NotDelivered);
        Assert.True(didNotRun.NotDelivered);
        Assert.Equal(DisconnectReason.ServerStopping, didNotRun.Reason);

        // And a request made on the closed link is never sent.
        var later = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => link.RequestAsync(new IpyRpcMessage { Kind = MessageKind.Call, Function = "add" }, "add", new PendingRequest(), CancellationToken.None, null));
        Assert.True(later.NotDelivered);
    }

    [Fact]
    public async Task ADisposedClientsCallsSayTheyWereNotSent()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ShapeFunctions));
        IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        await client.DisposeAsync();
        var e = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => client.CallAsync<int>("add", 1, 2));
        Assert.True(e.NotDelivered);
        Assert.Equal(DisconnectReason.Disposed, e.Reason);
    }

    [Fact]
    public async Task ACallMadeWhileTheServerDrainsIsLeftForTheCloseWhichSaysItWasNeverDelivered()
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { ShutdownTimeout = TimeSpan.FromSeconds(20) });
        server.Register(typeof(BehaviourFunctions)).Register(typeof(ShapeFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        string gate = Gates.NewName("drain");
        Task<string> running = client.CallAsync<string>("print_wait_print", gate, "running");
        await Gates.WaitAsync(gate + ".printed");

        Task stopping = server.DisposeAsync().AsTask(); // waits for the running call, up to ShutdownTimeout
        Assert.True(server.IsStopping);
        Task<int> late = client.CallAsync<int>("add", 1, 2); // nothing will run it: left unanswered until the close
        await Task.Delay(200);
        Assert.False(late.IsCompleted);
        Assert.False(stopping.IsCompleted);

        Gates.Open(gate);
        Assert.Equal("running", await running.WaitAsync(TimeSpan.FromSeconds(20)));
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
        // The close came, and said the late call was never read: it did not run (a reconnecting client would make it again).
        var e = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => late.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.True(e.NotDelivered, e.Message);
        Assert.Equal(DisconnectReason.ServerStopping, e.Reason);
    }
}
