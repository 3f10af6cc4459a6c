using IpyRpc;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>
/// Packed frames (docs/PROTOCOL.md, "ZeroMQ"): between peers that both say in their handshake that they read them, small
/// messages go several to a ZeroMQ frame; a peer that does not say so gets plain messages, one ZeroMQ message each; and a
/// packed frame is read message by message, a bad one refused while the rest are answered.
/// </summary>
public sealed class PackedMessagesTests
{
    private static async Task<(IpyRpcClient Client, ZeroMqMessageChannel Channel)> ConnectAsync(ZmqServer s, ZeroMqOptions? options = null)
    {
        var channel = new ZeroMqMessageChannel(s.Endpoint, options);
        return (await IpyRpcClient.ConnectAsync(channel, new IpyRpcClientOptions { Output = (_, _) => { } }), channel);
    }

    private static async Task CallManyAsync(IpyRpcClient client, int calls, int inFlight)
    {
        for (int start = 0; start < calls; start += inFlight)
        {
            Task<int>[] round = [.. Enumerable.Range(start, inFlight).Select(i => client.CallAsync<int>("add", i, 1000))];
            int[] results = await Task.WhenAll(round).WaitAsync(TimeSpan.FromSeconds(30));
            for (int i = 0; i < results.Length; i++) Assert.Equal(start + i + 1000, results[i]);
        }
    }

    [Fact]
    public async Task CallsManyInFlightGoPackedBothWaysSeveralToAFrameAndEveryOneIsAnsweredRight()
    {
        await using ZmqServer s = ZmqServer.Start();
        (IpyRpcClient client, ZeroMqMessageChannel channel) = await ConnectAsync(s);
        await using (client)
        {
            await CallManyAsync(client, 4096, 32);
        }

        (long clientMessages, long clientFrames) = channel.Loop.PackedCounts;
        (long serverMessages, long serverFrames) = s.Host.Loop.PackedCounts;
        // The server's first reply (to hello) is packed already: the client said it reads packed frames. The client packs
        // once that reply has told it the server does. Every call and reply after that goes packed.
        Assert.True(clientMessages >= 4096 && serverMessages >= 4096, $"packed: {clientMessages} messages from the client, {serverMessages} from the server");
        // Replies that arrive together go on together: their next calls, and the server's replies, share frames.
        Assert.True(clientMessages > clientFrames || serverMessages > serverFrames,
            $"one message a frame: the client {clientMessages} in {clientFrames}, the server {serverMessages} in {serverFrames}");
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public async Task WhenEitherSideDoesNotPackNeitherSendsPackedFrames(bool serverPacks, bool clientPacks)
    {
        await using ZmqServer s = ZmqServer.Start(options: new ZeroMqOptions { PackMessages = serverPacks });
        (IpyRpcClient client, ZeroMqMessageChannel channel) = await ConnectAsync(s, new ZeroMqOptions { PackMessages = clientPacks });
        await using (client)
        {
            await CallManyAsync(client, 512, 32);
        }

        Assert.Equal((0L, 0L), channel.Loop.PackedCounts);
        Assert.Equal((0L, 0L), s.Host.Loop.PackedCounts);
    }

    [Fact]
    public async Task APeerThatDoesNotSayItReadsPackedFramesGetsPlainMessages()
    {
        await using ZmqServer s = ZmqServer.Start();
        using var dealer = new RawDealer(s.Endpoint); // sets no handshake metadata, as the Python client of PROTOCOL.md
        for (ulong id = 1; id <= 32; id++) dealer.Send(Call(id, (int)id, 1));
        for (int i = 0; i < 32; i++)
        {
            List<byte[]> frames = dealer.Receive(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("no reply");
            Assert.False(PackedMessages.IsPacked(frames[0]), "a packed frame went to a peer that did not say it reads them");
            Assert.Equal(MessageKind.Result, MessageCodec.DecodeHeader(frames[0], []).Kind);
        }

        Assert.Equal(0, s.Host.Loop.PackedCounts.Messages);
    }

    [Fact]
    public async Task APackedFrameIsReadMessageByMessageAndABadOneIsRefusedWhileTheRestAreAnswered()
    {
        await using ZmqServer s = ZmqServer.Start();
        using var dealer = new RawDealer(s.Endpoint);
        byte[] badHeader = Header(w =>
        {
            w.Write("v"); w.Write(1);
            w.Write("kind"); w.Write("teleport");
            w.Write("id"); w.Write(2ul);
        }, 3);
        dealer.Send(Packed(Block(Call(1, 2, 3)), Block([badHeader, Args(0, 0)]), Block(Call(3, 40, 2))));

        Dictionary<ulong, IpyRpcMessage> replies = [];
        for (int i = 0; i < 3; i++)
        {
            IpyRpcMessage reply = dealer.ReceiveMessage();
            replies[reply.Id] = reply;
        }

        Assert.Equal(MessageKind.Result, replies[1].Kind);
        Assert.Equal(5, new MessagePackReader(replies[1].Body.Span).ReadInt32());
        Assert.Equal(MessageKind.Error, replies[2].Kind); // named by the id its header carries
        Assert.Equal(ErrorCodes.BadMessage, RemoteError.Decode(replies[2].Body.Span, replies[2].Serialization).Code);
        Assert.Equal(MessageKind.Result, replies[3].Kind);
        Assert.Equal(42, new MessagePackReader(replies[3].Body.Span).ReadInt32());

        // A packed frame that ends inside a message: what came before it is answered, the rest refused, and the server goes on.
        byte[] whole = Block(Call(4, 1, 1));
        byte[] cut = Block(Call(5, 1, 1))[..20];
        dealer.Send(Packed(whole, cut));
        IpyRpcMessage[] two = [dealer.ReceiveMessage(), dealer.ReceiveMessage()]; // the refusal may overtake the call's result
        IpyRpcMessage answered = Assert.Single(two, m => m.Kind == MessageKind.Result), refused = Assert.Single(two, m => m.Kind == MessageKind.Error);
        Assert.Equal(4ul, answered.Id);
        Assert.Equal(0ul, refused.Id); // the cut message's header is not all there: no id to name
        Assert.Contains("packed", RemoteError.Decode(refused.Body.Span, refused.Serialization).Message, StringComparison.OrdinalIgnoreCase);

        dealer.Send(Call(6, 20, 22));
        IpyRpcMessage after = dealer.ReceiveMessage();
        Assert.Equal((6ul, MessageKind.Result, 42), (after.Id, after.Kind, new MessagePackReader(after.Body.Span).ReadInt32()));
    }

    [Fact]
    public async Task APythonPeerWrittenFromTheProtocolPageSendsPackedCallsAndReadsPackedReplies()
    {
        await using ZmqServer s = ZmqServer.Start();
        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("packed_peer.py", s.Endpoint);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("server reads packed: 1", stdout); // the server's handshake metadata, read by pyzmq
        Assert.Contains("results: 1=11 2=22 3=33 4=44 5=55", stdout);
        Assert.Matches(@"packed frames received: [1-5] plain messages received: 0", stdout); // it said it reads them: every reply came packed
        Assert.Equal(5, s.Host.Loop.PackedCounts.Messages);
    }

    private static byte[] Header(Action<MessagePackWriter> fields, int count)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var w = new MessagePackWriter(buffer);
        w.WriteMapHeader(count);
        fields(w);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[][] Call(ulong id, int a, int b) => [Header(w =>
    {
        w.Write("v"); w.Write(1);
        w.Write("kind"); w.Write("call");
        w.Write("id"); w.Write(id);
        w.Write("fn"); w.Write("add");
    }, 4), Args(a, b)];

    private static byte[] Args(int a, int b) => [0x92, (byte)a, (byte)b]; // a MessagePack array of two positive fixints (under 128)

    private static byte[] Block(byte[][] frames)
    {
        byte[] block = new byte[MessageCodec.BlockLength(frames[0].Length, [.. frames.Select(f => (ReadOnlyMemory<byte>)f)], 1)];
        MessageCodec.WriteBlock(block, frames[0], [.. frames.Select(f => (ReadOnlyMemory<byte>)f)], 1);
        return block;
    }

    private static byte[] Packed(params byte[][] blocks) => [PackedMessages.Marker, .. blocks.SelectMany(b => b)];
}
