using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>
/// The packed WebSocket subprotocol (<c>ipyrpc.v1.packed</c>): several IpyRpc messages one after another in one
/// WebSocket message, read from a raw WebSocket against Kestrel and between two channels over a loopback TCP connection.
/// </summary>
public sealed class WebSocketPackedTests
{
    private static byte[] Pack(params IpyRpcMessage[] messages) => [.. messages.SelectMany(MessageCodec.EncodeFramed)];

    private static async Task<byte[]> ReceiveWebSocketMessageAsync(WebSocket socket)
    {
        var buffer = new byte[256 * 1024];
        int filled = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(filled), new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            filled += result.Count;
        }
        while (!result.EndOfMessage);
        return buffer[..filled];
    }

    /// <summary>Receives WebSocket messages until <paramref name="count"/> IpyRpc messages came, each WebSocket message read as a pack.</summary>
    private static async Task<List<IpyRpcMessage>> ReceivePackedAsync(WebSocket socket, int count)
    {
        var messages = new List<IpyRpcMessage>();
        while (messages.Count < count)
        {
            ReadOnlyMemory<byte> pack = await ReceiveWebSocketMessageAsync(socket);
            while (!pack.IsEmpty)
            {
                Assert.True(MessageCodec.TryReadFramed(pack, 1 << 20, out IpyRpcMessage? message, out int consumed));
                messages.Add(message!);
                pack = pack[consumed..];
            }
        }

        return messages;
    }

    private static async Task<ClientWebSocket> ConnectRawAsync(IpyRpcHttpServer host, params string[] offered)
    {
        var socket = new ClientWebSocket();
        foreach (string subProtocol in offered) socket.Options.AddSubProtocol(subProtocol);
        await socket.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(host.Address), CancellationToken.None);
        return socket;
    }

    [Fact]
    public async Task ARawClientOfferingBothGetsThePackedFormAndItsPackedMessagesAreEachAnsweredInOrder()
    {
        await using var server = new IpyRpcServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using ClientWebSocket socket = await ConnectRawAsync(host, "ipyrpc.v1", "ipyrpc.v1.packed");
        Assert.Equal("ipyrpc.v1.packed", socket.SubProtocol); // the server prefers it, whatever the client's order

        await socket.SendAsync(Pack([.. Enumerable.Range(1, 10).Select(i => new IpyRpcMessage { Kind = MessageKind.Ping, Id = (ulong)i })]), WebSocketMessageType.Binary, true, CancellationToken.None);
        List<IpyRpcMessage> pongs = await ReceivePackedAsync(socket, 10);
        Assert.All(pongs, p => Assert.Equal(MessageKind.Pong, p.Kind));
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (ulong)i), pongs.Select(p => p.Id));
    }

    [Fact]
    public async Task AnUnreadableMessageInAPackIsRefusedAndTheRestReadAndAPackEndingInsideAMessageLosesOnlyThat()
    {
        await using var server = new IpyRpcServer();
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using ClientWebSocket socket = await ConnectRawAsync(host, "ipyrpc.v1.packed");

        // A frame whose prefix is sound (so the next can be found) but whose header is not MessagePack.
        byte[] garbled = [.. BitConverter.GetBytes(3u), .. BitConverter.GetBytes(0ul), 0xc1, 0xc1, 0xc1];
        byte[] pack = [.. MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 1 }), .. garbled, .. MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 3 })];
        await socket.SendAsync(pack, WebSocketMessageType.Binary, true, CancellationToken.None);
        // (Replies to different messages come in no promised order.)
        List<IpyRpcMessage> replies = await ReceivePackedAsync(socket, 3);
        Assert.Equal([1UL, 3UL], replies.Where(r => r.Kind == MessageKind.Pong).Select(r => r.Id).Order());
        IpyRpcMessage refusal = Assert.Single(replies, r => r.Kind == MessageKind.Error);
        Assert.Equal(ErrorCodes.BadMessage, RemoteError.Decode(refusal.Body.Span, refusal.Serialization).Code);

        // A pack cut short inside its second message: the first is answered, the rest refused as truncated, and the
        // connection goes on.
        byte[] whole = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 5 });
        await socket.SendAsync((byte[])[.. MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 4 }), .. whole[..^2]], WebSocketMessageType.Binary, true, CancellationToken.None);
        replies = await ReceivePackedAsync(socket, 2);
        Assert.Equal(4UL, Assert.Single(replies, r => r.Kind == MessageKind.Pong).Id);
        refusal = Assert.Single(replies, r => r.Kind == MessageKind.Error);
        Assert.Contains("Truncated", RemoteError.Decode(refusal.Body.Span, refusal.Serialization).Message);

        await socket.SendAsync(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 6 }), WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(6UL, Assert.Single(await ReceivePackedAsync(socket, 1)).Id);
    }

    /// <summary>Two channels speaking the packed form over a loopback TCP connection; the first one's writes can be held.</summary>
    private sealed class Pair : IAsyncDisposable
    {
        private readonly TcpClient _near;
        private readonly TcpClient _far;

        private Pair(TcpClient near, TcpClient far, BatchingStream stream)
        {
            _near = near;
            _far = far;
            Stream = stream;
            Sender = new WebSocketMessageChannel(
                WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = true, SubProtocol = WebSocketMessageChannel.PackedSubProtocol }),
                1 << 20, isServer: true, batching: stream, owned: null);
            Receiver = new WebSocketMessageChannel(
                WebSocket.CreateFromStream(far.GetStream(), new WebSocketCreationOptions { IsServer = false, SubProtocol = WebSocketMessageChannel.PackedSubProtocol }),
                1 << 20, isServer: false);
        }

        public BatchingStream Stream { get; }

        public WebSocketMessageChannel Sender { get; }

        public WebSocketMessageChannel Receiver { get; }

        public static async Task<Pair> OpenAsync()
        {
            (TcpClient near, TcpClient far) = await LoopbackTcp.ConnectAsync();
            return new Pair(near, far, new BatchingStream(near.GetStream()));
        }

        public async ValueTask DisposeAsync()
        {
            await Sender.DisposeAsync();
            await Receiver.DisposeAsync();
            _near.Dispose();
            _far.Dispose();
        }
    }

    private static IpyRpcMessage Output(ulong id, string text) => new() { Kind = MessageKind.Output, Id = id, Stream = OutputStream.Stdout, Parts = [System.Text.Encoding.UTF8.GetBytes(text)] };

    /// <summary>Holds the next write of <paramref name="stream"/> until <paramref name="release"/>; completes once it is held.</summary>
    private static Task HoldNextWrite(BatchingStream stream, Task release)
    {
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        stream.BeforeInnerWrite = async () =>
        {
            stream.BeforeInnerWrite = null;
            held.TrySetResult();
            await release;
        };
        return held.Task;
    }

    [Fact]
    public async Task ClosingAChannelWhoseWriteNeverEndsStillCloses()
    {
        // The other side has stopped reading: the write under way never ends, and closing gives up on it in seconds.
        Pair pair = await Pair.OpenAsync();
        var never = new TaskCompletionSource();
        Task held = HoldNextWrite(pair.Stream, never.Task);
        await pair.Sender.SendAsync(Output(1, "stuck"));
        await held.WaitAsync(TimeSpan.FromSeconds(10));
        await pair.Sender.SendAsync(Output(2, "queued behind it"));

        await pair.Sender.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20));
        await Assert.ThrowsAsync<IpyRpcConnectionException>(() => pair.Sender.SendAsync(Output(3, "after")).AsTask());
        never.SetResult();
        await pair.DisposeAsync();
    }

    [Fact]
    public async Task AServersChannelPacksWhatQueuesBehindAWriteAndTheOtherEndReadsEveryMessageInOrder()
    {
        await using Pair pair = await Pair.OpenAsync();
        var release = new TaskCompletionSource();
        Task held = HoldNextWrite(pair.Stream, release.Task);
        long before = pair.Stream.InnerWrites;
        await pair.Sender.SendAsync(Output(1, "first"));
        await held.WaitAsync(TimeSpan.FromSeconds(10));
        for (int i = 2; i <= 40; i++) await pair.Sender.SendAsync(Output((ulong)i, "line " + i));
        release.SetResult();

        var received = new List<IpyRpcMessage>();
        while (received.Count < 40) received.Add((await pair.Receiver.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!);
        Assert.Equal(Enumerable.Range(1, 40).Select(i => (ulong)i), received.Select(m => m.Id));
        Assert.Equal("line 40", System.Text.Encoding.UTF8.GetString(received[^1].Body.Span));
        Assert.Equal(before + 2, pair.Stream.InnerWrites); // the held one, then the thirty-nine in one WebSocket message
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ClosingAChannelWritesWhatIsQueuedBeforeTheClose(bool whileAWriteIsHeld)
    {
        // Queued behind a write under way, or queued with no flush scheduled yet: either way they go before the close.
        Pair pair = await Pair.OpenAsync();
        var release = new TaskCompletionSource();
        if (whileAWriteIsHeld)
        {
            Task held = HoldNextWrite(pair.Stream, release.Task);
            await pair.Sender.SendAsync(Output(1, "first"));
            await held.WaitAsync(TimeSpan.FromSeconds(10));
        }
        else
        {
            pair.Sender.HoldFlushes = true;
            await pair.Sender.SendAsync(Output(1, "first"));
        }

        for (int i = 2; i <= 5; i++) await pair.Sender.SendAsync(Output((ulong)i, "queued"));
        Task closing = pair.Sender.DisposeAsync().AsTask();
        release.SetResult();
        await closing.WaitAsync(TimeSpan.FromSeconds(10));

        var received = new List<ulong>();
        while (await pair.Receiver.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)) is { } message) received.Add(message.Id);
        Assert.Equal([1UL, 2UL, 3UL, 4UL, 5UL], received); // then the close ends the receiving
        await pair.DisposeAsync();
    }
}
