using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using IpyRpc.Formatting;
using IpyRpc.Protocol;
using IpyRpc.Tests;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ChannelTrackingTests
{
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static IpyRpcMessage Call(ulong id, string function, ReadOnlyMemory<byte> arguments) => new()
    {
        Kind = MessageKind.Call,
        Id = id,
        Function = function,
        Parts = [arguments],
    };

    [Fact]
    public async Task TheClientChannelTracksRequestsOnlyUntilTheFirstHandshakeAndEachReplyUntracksItsOwn()
    {
        string endpoint = $"tcp://127.0.0.1:{FreePort()}";
        await using var channel = new ZeroMqMessageChannel(endpoint);
        Channel<IpyRpcMessage> replies = Channel.CreateUnbounded<IpyRpcMessage>();
        channel.StartReceiving(m => replies.Writer.TryWrite(m), _ => replies.Writer.TryComplete());

        // Nothing listens yet: the request is tracked, so that a handshake that fails can fail it.
        await channel.SendAsync(Call(1, "add", new IpyRpcArguments().Add(2, Formatters.Int32).Add(3, Formatters.Int32).Encode(Serialization.MessagePack)));
        Assert.Equal(1, channel.TrackedRequests);

        await using ZmqServer s = ZmqServer.Start(endpoint);
        IpyRpcMessage first = await replies.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((MessageKind.Result, 1ul), (first.Kind, first.Id));
        Assert.Equal(0, channel.TrackedRequests); // its reply untracked it

        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!channel.IsConnected && DateTime.UtcNow < deadline) await Task.Delay(10);
        Assert.True(channel.IsConnected);

        // After the handshake a dropped connection ends the whole link, so a request is not tracked: this one is held
        // by its function while the count is read.
        string gate = Gates.NewName("tracked");
        await channel.SendAsync(Call(2, "wait", new IpyRpcArguments().Add(gate, Formatters.String).Encode(Serialization.MessagePack)));
        await Gates.WaitAsync(gate + ".started");
        Assert.Equal(0, channel.TrackedRequests);
        Gates.Open(gate);
        IpyRpcMessage second = await replies.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal((MessageKind.Result, 2ul), (second.Kind, second.Id));
        Assert.Equal(0, channel.TrackedRequests);
    }
}
