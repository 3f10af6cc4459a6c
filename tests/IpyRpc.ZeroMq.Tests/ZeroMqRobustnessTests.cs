using System.Diagnostics;
using IpyRpc;
using IpyRpc.Formatting;
using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqRobustnessTests
{
    private static byte[] Header(MessageKind kind, ulong id, string? fn = null) => MessageCodec.EncodeHeader(new IpyRpcMessage { Kind = kind, Id = id, Function = fn });

    private static byte[] Args(int a, int b) => new IpyRpcArguments().Add(a, Formatters.Int32).Add(b, Formatters.Int32).Encode(Serialization.MessagePack).ToArray();

    private static void AssertGoodCallWorks(RawDealer peer, ulong id)
    {
        peer.Send(Header(MessageKind.Call, id, "add"), Args(20, 22));
        IpyRpcMessage reply = peer.ReceiveMessage();
        Assert.Equal(MessageKind.Result, reply.Kind);
        Assert.Equal(id, reply.Id);
        Assert.Equal(42, (int)(long)DecodeObject(reply.Body)!);
    }

    private static object? DecodeObject(ReadOnlyMemory<byte> body)
    {
        var reader = new IpyRpc.MessagePack.MessagePackReader(body.Span);
        return Formatters.Object.Read(ref reader);
    }

    private static RemoteError ExpectError(RawDealer peer, ulong expectedId, string code)
    {
        IpyRpcMessage reply = peer.ReceiveMessage();
        Assert.Equal(MessageKind.Error, reply.Kind);
        Assert.Equal(expectedId, reply.Id);
        RemoteError error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
        Assert.True(code == error.Code, $"{error.Code}: {error.Message}");
        return error;
    }

    [Fact]
    public async Task MalformedFramesGetErrorRepliesAndTheServerKeepsServing()
    {
        await using ZmqServer s = ZmqServer.Start();
        using var peer = new RawDealer(s.Endpoint);

        peer.Send("random bytes, not a header"u8.ToArray());
        ExpectError(peer, 0, ErrorCodes.BadMessage);

        peer.Send(new byte[][] { [] }); // one empty frame
        ExpectError(peer, 0, ErrorCodes.BadMessage);

        byte[] header = Header(MessageKind.Call, 11, "add");
        peer.Send(header[..^4], Args(1, 2)); // truncated header: the id was read before the cut, so the error names the call
        ExpectError(peer, 11, ErrorCodes.BadMessage);

        // A header declaring a 4 GB string.
        peer.Send([0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]);
        Assert.Contains("remain", ExpectError(peer, 0, ErrorCodes.BadMessage).Message);

        // Arguments declaring a huge binary: refused by size, nothing allocated.
        peer.Send(Header(MessageKind.Call, 12, "add"), [0x92, 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00]);
        ExpectError(peer, 12, ErrorCodes.InvalidArguments);

        // Wrong frame count: far too many parts.
        peer.Send([.. Enumerable.Repeat(Header(MessageKind.Call, 13, "add"), 1).Concat(Enumerable.Repeat(new byte[] { 0x90 }, 100))]);
        ExpectError(peer, 13, ErrorCodes.BadMessage);

        // A call without its arguments frame is a call with no arguments.
        peer.Send(Header(MessageKind.Call, 14, "add"));
        Assert.Contains("missing the required argument 'a'", ExpectError(peer, 14, ErrorCodes.InvalidArguments).Message);

        peer.Send(Header(MessageKind.Call, 15, "no_such_function"), Args(1, 2));
        ExpectError(peer, 15, ErrorCodes.UnknownFunction);

        AssertGoodCallWorks(peer, 99);
    }

    [Fact]
    public async Task OversizedMessagesAreRefusedAndTheServerKeepsServing()
    {
        await using ZmqServer s = ZmqServer.Start(options: new ZeroMqOptions { MaxMessageBytes = 1 << 20 });
        using var peer = new RawDealer(s.Endpoint);

        // Two frames each under the per-frame limit, together over the message limit: answered.
        byte[] big = new byte[700_000];
        peer.Send(Header(MessageKind.Call, 21, "add"), big, big);
        ExpectError(peer, 21, ErrorCodes.TooLarge);

        // One frame over ZMQ_MAXMSGSIZE: libzmq drops the connection without a reply; the peer reconnects.
        peer.Send(Header(MessageKind.Call, 22, "add"), new byte[3 << 20]);
        Assert.Null(peer.Receive(TimeSpan.FromMilliseconds(500)));

        AssertGoodCallWorks(peer, 23);
    }

    [Fact]
    public async Task AGracefulShutdownCancelsCallsInFlightAndSaysSo()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        string gate = Gates.NewName("shutdown");
        Task<int> inFlight = client.CallAsync<int>("wait", gate);
        await Gates.WaitAsync(gate + ".started");
        await s.Host.DisposeAsync();
        var e = await Assert.ThrowsAsync<IpyRpcCancelledException>(() => inFlight.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(ErrorCodes.Cancelled, e.Code);
        await Gates.WaitAsync(gate + ".cancelled");
    }

    [Fact]
    public async Task ACallInFlightWhenTheServerProcessDiesFailsClearlyAndTheClientReconnectsToTheNextOne()
    {
        string endpoint;
        await using (ZmqServer probe = ZmqServer.Start()) endpoint = probe.Endpoint;

        using Process first = await QuickstartServer.StartAsync(endpoint);
        var firstLine = new TaskCompletionSource();
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(endpoint, new IpyRpcClientOptions { Output = (_, _) => firstLine.TrySetResult() });
        var disconnected = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += info => disconnected.TrySetResult(info);
        client.Reconnected += () => reconnected.TrySetResult();
        Task<int> inFlight = client.CallAsync<int>("print_lines", 1000);
        await firstLine.Task.WaitAsync(TimeSpan.FromSeconds(15));
        first.Kill(entireProcessTree: true);

        var lost = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => inFlight.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Equal(ErrorCodes.ConnectionLost, lost.Code);
        Assert.Contains("may or may not have run", lost.Message);
        Assert.Equal(DisconnectReason.ConnectionLost, (await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(15))).Reason);

        // While the server is away, a call waits for it; one that cannot wait so long fails at once, unsent.
        Task<int> waiting = client.CallAsync<int>("add", 1, 2);
        var down = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => client.CallAsync<int>("add", [1, 2], new CallOptions { Timeout = TimeSpan.FromMilliseconds(200) }).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("reconnecting", down.Message);
        Assert.True(down.NotDelivered);

        using Process second = await QuickstartServer.StartAsync(endpoint);
        try
        {
            await reconnected.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(client.IsConnected);
            Assert.Equal(3, await waiting.WaitAsync(TimeSpan.FromSeconds(15)));
            Assert.Equal(9, await client.CallAsync<int>("add", 4, 5).WaitAsync(TimeSpan.FromSeconds(15)));
        }
        finally
        {
            second.Kill(entireProcessTree: true);
        }
    }

    [Fact]
    public async Task AServerThatStopsSaysSoAndLaterCallsFailAtOnce()
    {
        string endpoint;
        await using (ZmqServer probe = ZmqServer.Start()) endpoint = probe.Endpoint;
        await using ZmqServer s = ZmqServer.Start(endpoint);
        await using IpyRpcClient client = await s.ConnectAsync(new IpyRpcClientOptions { Reconnect = null });
        var disconnected = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += info => disconnected.TrySetResult(info);
        await s.Host.DisposeAsync();
        DisconnectInfo why = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DisconnectReason.ServerStopping, why.Reason);
        Assert.False(client.IsConnected);
        var e = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => client.CallAsync<int>("add", [1, 2], new CallOptions { Timeout = TimeSpan.FromSeconds(30) }).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(DisconnectReason.ServerStopping, e.Reason);
    }
}
