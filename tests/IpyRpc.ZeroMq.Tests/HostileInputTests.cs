using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>Inputs an outside client sent that used to go unanswered or be misread; each must get its specific answer.</summary>
public sealed class HostileInputTests
{
    private static byte[] Header(Action<MessagePackWriter> fields, int count)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteMapHeader(count);
        fields(w);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Call(ulong id, long timeoutMs) => Header(w =>
    {
        w.Write("v"); w.Write(1);
        w.Write("kind"); w.Write("call");
        w.Write("id"); w.Write(id);
        w.Write("fn"); w.Write("add");
        w.Write("timeout_ms"); w.Write(timeoutMs);
    }, 5);

    [Fact]
    public async Task AHugeTimeoutIsAnsweredAndANegativeOneIsABadMessage()
    {
        await using ZmqServer s = ZmqServer.Start();
        using var dealer = new RawDealer(s.Endpoint);
        dealer.Send(Call(11, long.MaxValue), [0x92, 0x02, 0x03]);
        IpyRpcMessage reply = dealer.ReceiveMessage();
        Assert.Equal((MessageKind.Result, 11ul), (reply.Kind, reply.Id));
        Assert.Equal(5, new MessagePackReader(reply.Body.Span).ReadInt32());

        dealer.Send(Call(12, -5), [0x92, 0x02, 0x03]);
        reply = dealer.ReceiveMessage();
        Assert.Equal((MessageKind.Error, 12ul), (reply.Kind, reply.Id));
        Assert.Equal(ErrorCodes.BadMessage, RemoteError.Decode(reply.Body.Span, reply.Serialization).Code);
    }

    [Fact]
    public async Task AnUnknownKindIsRefusedUnderItsOwnIdAndTrailingBytesAfterAHeaderAreABadMessage()
    {
        await using ZmqServer s = ZmqServer.Start();
        using var dealer = new RawDealer(s.Endpoint);
        dealer.Send(Header(w =>
        {
            w.Write("v"); w.Write(1);
            w.Write("kind"); w.Write("teleport");
            w.Write("id"); w.Write(77ul);
        }, 3));
        IpyRpcMessage reply = dealer.ReceiveMessage();
        Assert.Equal((MessageKind.Error, 77ul), (reply.Kind, reply.Id));
        RemoteError error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
        Assert.Equal(ErrorCodes.BadMessage, error.Code);
        Assert.Contains("teleport", error.Message);

        dealer.Send([.. Call(78, 1000), 0x00, 0x01], [0x92, 0x02, 0x03]);
        reply = dealer.ReceiveMessage();
        Assert.Equal((MessageKind.Error, 78ul), (reply.Kind, reply.Id));
        error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
        Assert.Equal(ErrorCodes.BadMessage, error.Code);
        Assert.Contains("after the header", error.Message);

        await using IpyRpcClient client = await s.ConnectAsync();
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2)); // still serving
    }
}
