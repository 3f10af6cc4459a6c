using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>
/// Messages larger than a WebSocket connection's read buffer: read whole into an array of their own, sized by their
/// frame's prefix, which the connection does not keep; and the WebSocket messages whose prefix cannot size them (a
/// large message packed with others, one cut short). A server's channel on one end of a loopback TCP connection, a raw
/// WebSocket on the other. Runs alone: one test watches the whole process's heap.
/// </summary>
[Collection(nameof(Serial))]
public sealed class WebSocketLargeMessageTests
{
    private sealed class Link : IAsyncDisposable
    {
        private readonly TcpClient _near;
        private readonly TcpClient _far;

        private Link(TcpClient near, TcpClient far, string subProtocol)
        {
            _near = near;
            _far = far;
            Channel = new WebSocketMessageChannel(
                WebSocket.CreateFromStream(near.GetStream(), new WebSocketCreationOptions { IsServer = true, SubProtocol = subProtocol }),
                256L << 20, isServer: true);
            Raw = WebSocket.CreateFromStream(far.GetStream(), new WebSocketCreationOptions { IsServer = false, SubProtocol = subProtocol });
        }

        /// <summary>The server's end.</summary>
        public WebSocketMessageChannel Channel { get; }

        /// <summary>The other end: sends WebSocket messages as they are given.</summary>
        public WebSocket Raw { get; }

        public static async Task<Link> OpenAsync(string subProtocol)
        {
            (TcpClient near, TcpClient far) = await LoopbackTcp.ConnectAsync();
            return new Link(near, far, subProtocol);
        }

        /// <summary>The server's end answered what it was sent last with a <c>bad_message</c> error.</summary>
        public async Task AssertRefusedAsync()
        {
            IpyRpcMessage refusal = await ReadReplyAsync();
            Assert.Equal(MessageKind.Error, refusal.Kind);
            Assert.Equal(ErrorCodes.BadMessage, RemoteError.Decode(refusal.Body.Span, refusal.Serialization).Code);
        }

        /// <summary>Sends a result with <paramref name="body"/> and checks that the server's end reads it whole.</summary>
        public async Task AssertReadWholeAsync(ulong id, byte[] body)
        {
            await SendAsync(Result(id, body));
            IpyRpcMessage read = await ReceiveAsync();
            Assert.Equal(id, read.Id);
            Assert.True(body.AsSpan().SequenceEqual(read.Body.Span));
        }

        /// <summary>Sends one WebSocket message in pieces of 64 KiB (so the sender rents no array of the message's size).</summary>
        public async Task SendAsync(byte[] message)
        {
            const int piece = 64 * 1024;
            for (int at = 0; at < message.Length || at == 0; at += piece)
            {
                int length = Math.Min(piece, message.Length - at);
                await Raw.SendAsync(message.AsMemory(at, length), WebSocketMessageType.Binary, endOfMessage: at + length >= message.Length, CancellationToken.None);
                if (message.Length == 0) break;
            }
        }

        public async Task<IpyRpcMessage> ReceiveAsync() =>
            (await Channel.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)))!;

        /// <summary>Reads what the server's end sent back (one message a WebSocket message here: it is answered alone).</summary>
        public async Task<IpyRpcMessage> ReadReplyAsync()
        {
            var buffer = new byte[64 * 1024];
            int filled = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await Raw.ReceiveAsync(buffer.AsMemory(filled), new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
                filled += result.Count;
            }
            while (!result.EndOfMessage);
            return MessageCodec.DecodeFramed(buffer.AsMemory(0, filled).ToArray());
        }

        public async ValueTask DisposeAsync()
        {
            await Channel.DisposeAsync();
            Raw.Abort();
            Raw.Dispose();
            _near.Dispose();
            _far.Dispose();
        }
    }

    private static byte[] Ping(ulong id) => MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = id });

    private static byte[] Result(ulong id, byte[] body) => MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Result, Id = id, Parts = [body] });

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [Theory]
    [InlineData(WebSocketMessageChannel.SubProtocol)]
    [InlineData(WebSocketMessageChannel.PackedSubProtocol)]
    public async Task ALargeMessageIsReadWholeAndTheConnectionKeepsNothingOfItsSizeOnceItIsRead(string subProtocol)
    {
        await using Link link = await Link.OpenAsync(subProtocol);
        await link.SendAsync(Ping(1)); // the connection is up and its buffer in use before the heap is measured
        Assert.Equal(MessageKind.Ping, (await link.ReceiveAsync()).Kind);
        long before = GC.GetTotalMemory(forceFullCollection: true);

        byte[] expected = await SendLargeAsync(link, 40 << 20);
        IpyRpcMessage message = await link.ReceiveAsync();
        Assert.Equal(MessageKind.Result, message.Kind);
        Assert.Equal(2UL, message.Id);
        Assert.Equal(expected, SHA256.HashData(message.Body.Span));
        message.Pooled?.Release(); // the message's reader is done with it
        message = null!;

        // The connection goes on, and holds nothing of the large message's size: its array went with the message, and
        // back to the pool's store of large arrays, which lets go of them within a second.
        await link.SendAsync(Ping(3));
        Assert.Equal(3UL, (await link.ReceiveAsync()).Id);
        for (int i = 0; i < 100 && PooledParts.LargeBytesHeld > 0; i++) await Task.Delay(50);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 8L << 20, $"the heap grew by {(after - before) >> 20} MiB after one 40 MiB message on a connection still open");
    }

    [Theory]
    [InlineData(WebSocketMessageChannel.SubProtocol)]
    [InlineData(WebSocketMessageChannel.PackedSubProtocol)]
    public async Task ALargeMessageSentLeavesNothingOfItsSizeBehindOnceItIsSent(string subProtocol)
    {
        // Sent from its own parts in frames of at most a megabyte: not framed into one array of its size first, nor
        // copied whole into a send buffer that the socket rents from the shared pool (which would keep it).
        await using Link link = await Link.OpenAsync(subProtocol);
        await link.Channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 1 });
        Assert.Equal(1UL, (await link.ReadReplyAsync()).Id);
        long before = GC.GetTotalMemory(forceFullCollection: true);

        Task<(long, byte[])> reading = ReadHashedAsync(link.Raw); // a send this large waits until it is written
        byte[] hash = await SendLargeFromChannelAsync(link, 40 << 20);
        (long length, byte[] received) = await reading;
        Assert.Equal(hash, received);
        Assert.True(length > 40 << 20);
        for (int i = 0; i < 100 && PooledParts.LargeBytesHeld > 0; i++) await Task.Delay(50);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.True(after - before < 8L << 20, $"the heap grew by {(after - before) >> 20} MiB after one 40 MiB message sent");

        await link.Channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 3 }); // and the connection goes on
        Assert.Equal(3UL, (await link.ReadReplyAsync()).Id);
    }

    /// <summary>The server's end sends a result of <paramref name="length"/> random bytes (id 2) from pooled parts, as a call's result is; returns the framed message's hash.</summary>
    private static async Task<byte[]> SendLargeFromChannelAsync(Link link, int length)
    {
        var pool = new PooledParts();
        byte[] part = pool.Rent(length);
        new Random(9).NextBytes(part.AsSpan(0, length));
        var message = new IpyRpcMessage { Kind = MessageKind.Result, Id = 2, Parts = [part.AsMemory(0, length)], Pooled = pool };
        byte[] hash = SHA256.HashData(MessageCodec.EncodeFramed(message));
        await link.Channel.SendAsync(message);
        return hash;
    }

    /// <summary>Reads one WebSocket message through a 64 KiB buffer, hashing it as it comes: its length and hash.</summary>
    private static async Task<(long Length, byte[] Hash)> ReadHashedAsync(WebSocket socket)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long length = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(buffer.AsMemory(), new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            hash.AppendData(buffer, 0, result.Count);
            length += result.Count;
        }
        while (!result.EndOfMessage);
        return (length, hash.GetHashAndReset());
    }

    /// <summary>Sends a result of <paramref name="length"/> random bytes (id 2) and returns the bytes' hash; the test keeps no reference to them.</summary>
    private static async Task<byte[]> SendLargeAsync(Link link, int length)
    {
        byte[] body = RandomBytes(length, 7);
        await link.SendAsync(Result(2, body));
        return SHA256.HashData(body);
    }

    [Fact]
    public async Task ALargeMessagePackedWithSmallOnesAfterItIsReadWholeAndTheSmallOnesToo()
    {
        // The first frame's prefix sizes an array for it, and the WebSocket message goes on past it: the rest is read
        // too, and every message delivered in order.
        await using Link link = await Link.OpenAsync(WebSocketMessageChannel.PackedSubProtocol);
        byte[] body = RandomBytes(300_000, 11);
        await link.SendAsync([.. Result(1, body), .. Ping(2), .. Result(3, [1, 2, 3]), .. Result(4, RandomBytes(200_000, 12))]);
        IpyRpcMessage first = await link.ReceiveAsync();
        Assert.Equal(1UL, first.Id);
        Assert.True(body.AsSpan().SequenceEqual(first.Body.Span));
        Assert.Equal(2UL, (await link.ReceiveAsync()).Id);
        IpyRpcMessage third = await link.ReceiveAsync();
        Assert.Equal(3UL, third.Id);
        Assert.Equal([1, 2, 3], third.Body.ToArray());
        IpyRpcMessage fourth = await link.ReceiveAsync();
        Assert.Equal(4UL, fourth.Id);
        Assert.True(RandomBytes(200_000, 12).AsSpan().SequenceEqual(fourth.Body.Span));
    }

    [Theory]
    [InlineData(WebSocketMessageChannel.SubProtocol)]
    [InlineData(WebSocketMessageChannel.PackedSubProtocol)]
    public async Task ALargeMessageThatEndsBeforeItsPrefixSaysIsRefusedAndTheConnectionGoesOn(string subProtocol)
    {
        await using Link link = await Link.OpenAsync(subProtocol);
        byte[] whole = Result(1, RandomBytes(300_000, 13));
        await link.SendAsync(whole[..200_000]);
        await link.AssertRefusedAsync();

        // A large one that is whole is read after it, and so is a small one.
        await link.AssertReadWholeAsync(5, RandomBytes(150_000, 14));
        await link.SendAsync(Ping(6));
        Assert.Equal(6UL, (await link.ReceiveAsync()).Id);
    }

    [Theory]
    [InlineData(WebSocketMessageChannel.SubProtocol)]
    [InlineData(WebSocketMessageChannel.PackedSubProtocol)]
    public async Task ALargeMessageWhoseHeaderCannotBeReadIsRefusedAndTheNextReadWhole(string subProtocol)
    {
        // Sized by its prefix and read whole, but no message: refused, and the array it was read into let go.
        await using Link link = await Link.OpenAsync(subProtocol);
        byte[] garbled = Result(1, RandomBytes(100_000, 15));
        garbled[MessageCodec.FramePrefixBytes] = 0xc1; // the header's first byte: never valid MessagePack
        await link.SendAsync(garbled);
        await link.AssertRefusedAsync();
        await link.AssertReadWholeAsync(2, RandomBytes(120_000, 16));
    }
}
