using System.Security.Cryptography;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace IpyRpc.Http.Tests;

/// <summary>
/// Large messages over the HTTP requests carrier: a request's body written from the message's own parts (no array of
/// the message's size), and a response's large message read into an array of its own, sized by its frame's prefix, that
/// nobody keeps once the message is read. The client's channel against a Kestrel that answers with bytes the test
/// writes. Runs alone: one test watches the whole process's heap.
/// </summary>
[Collection(nameof(Serial))]
public sealed class HttpLargeMessageTests
{
    /// <summary>A Kestrel on loopback whose binary endpoint answers every request with what <c>Answer</c> writes.</summary>
    private sealed class ScriptedServer : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private ScriptedServer(WebApplication app, Uri address)
        {
            _app = app;
            Address = address;
        }

        public Uri Address { get; }

        /// <summary>Writes the response to a request whose body (a framed message) was read whole.</summary>
        public Func<IpyRpcMessage, HttpResponse, Task> Answer { get; set; } = (_, _) => Task.CompletedTask;

        /// <summary>The bodies of the requests received so far, each as its hash and its length.</summary>
        public List<(byte[] Hash, long Length)> Bodies { get; } = [];

        public static async Task<ScriptedServer> StartAsync()
        {
            WebApplicationBuilder builder = LoopbackKestrel.CreateBuilder();
            builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
            WebApplication app = builder.Build();
            ScriptedServer? server = null;
            app.MapPost("/ipyrpc", async context =>
            {
                var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                byte[] bytes = body.ToArray();
                lock (server!.Bodies) server.Bodies.Add((SHA256.HashData(bytes), bytes.Length));
                await server.Answer(MessageCodec.DecodeFramed(bytes, 256L << 20), context.Response);
            });
            await app.StartAsync();
            server = new ScriptedServer(app, LoopbackKestrel.AddressOf(app));
            return server;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static byte[] Framed(MessageKind kind, ulong id, params ReadOnlyMemory<byte>[] parts)
        => MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = kind, Id = id, Parts = parts });

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<IpyRpcMessage> ReceiveAsync(HttpMessageChannel channel)
        => (await channel.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)))!;

    [Fact]
    public async Task ALargeResponseIsReadWholeBetweenSmallMessagesAndNobodyKeepsAnythingOfItsSizeOnceItIsRead()
    {
        await using ScriptedServer server = await ScriptedServer.StartAsync();
        await using var channel = new HttpMessageChannel(server.Address, maxMessageBytes: 256L << 20);
        byte[] expected = [];
        server.Answer = async (request, response) =>
        {
            if (request.Id == 1)
            {
                await response.Body.WriteAsync(Framed(MessageKind.Pong, request.Id));
                return;
            }

            // Output before and after the large message, then the result: four messages in one response.
            byte[] large = RandomBytes(40 << 20, (int)request.Id);
            expected = SHA256.HashData(large);
            await response.Body.WriteAsync(Framed(MessageKind.Output, request.Id, "before"u8.ToArray()));
            byte[] framed = Framed(MessageKind.Output, request.Id, large);
            for (int at = 0; at < framed.Length; at += 256 * 1024)
            {
                // In pieces: written whole, Kestrel's pipe would hold all of it, in blocks its pool keeps for a while.
                await response.Body.WriteAsync(framed.AsMemory(at, Math.Min(256 * 1024, framed.Length - at)));
            }

            await response.Body.WriteAsync(Framed(MessageKind.Output, request.Id, "after"u8.ToArray()));
            await response.Body.WriteAsync(Framed(MessageKind.Result, request.Id, new byte[] { 1, 2, 3 }));
        };

        await channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 1 }); // the connection is up before the heap is measured
        Assert.Equal(MessageKind.Pong, (await ReceiveAsync(channel)).Kind);
        long before = GC.GetTotalMemory(forceFullCollection: true);

        await channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 2 });
        Assert.Equal("before"u8.ToArray(), (await ReceiveAsync(channel)).Body.ToArray());
        IpyRpcMessage message = await ReceiveAsync(channel);
        Assert.Equal((MessageKind.Output, 2UL), (message.Kind, message.Id));
        Assert.Equal(expected, SHA256.HashData(message.Body.Span));
        Assert.NotNull(message.Pooled); // read into an array of its own, which goes back when the reader is done with it
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(message.Body, out ArraySegment<byte> segment));
        var array = new WeakReference(segment.Array);
        segment = default;
        message.Pooled!.Release();
        message = null!;
        Assert.Equal("after"u8.ToArray(), (await ReceiveAsync(channel)).Body.ToArray());
        IpyRpcMessage result = await ReceiveAsync(channel);
        Assert.Equal((MessageKind.Result, 2UL), (result.Kind, result.Id));
        Assert.Equal([1, 2, 3], result.Body.ToArray());

        // Nothing of the large message's size is kept: not by the channel, not by the shared pool (a buffer that grew
        // to hold it, given back there, would be), and the store of large arrays lets go of its array within a second.
        for (int i = 0; i < 100 && PooledParts.LargeBytesHeld > 0; i++) await Task.Delay(50);
        long after = GC.GetTotalMemory(forceFullCollection: true);
        Assert.False(array.IsAlive, "the array the large message was read into is still alive");
        Assert.True(after - before < 8L << 20, $"the heap grew by {(after - before) >> 20} MiB after one response with a 40 MiB message");
    }

    [Fact]
    public async Task AResponseThatEndsInsideALargeMessageFailsItsCallAndTheNextCallIsAnswered()
    {
        await using ScriptedServer server = await ScriptedServer.StartAsync();
        await using var channel = new HttpMessageChannel(server.Address);
        server.Answer = async (request, response) =>
        {
            byte[] whole = Framed(MessageKind.Result, request.Id, RandomBytes(300_000, 1));
            await response.Body.WriteAsync(request.Id == 1 ? whole.AsMemory(0, 200_000) : whole);
        };

        await channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = "f" });
        IpyRpcMessage failed = await ReceiveAsync(channel);
        Assert.Equal((MessageKind.Error, 1UL), (failed.Kind, failed.Id));
        RemoteError error = RemoteError.Decode(failed.Body.Span, failed.Serialization);
        Assert.Equal(ErrorCodes.BadMessage, error.Code);
        Assert.Contains("ended inside a message", error.Message);

        await channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 2, Function = "f" });
        IpyRpcMessage answered = await ReceiveAsync(channel);
        Assert.Equal((MessageKind.Result, 2UL), (answered.Kind, answered.Id));
        Assert.Equal(RandomBytes(300_000, 1), answered.Body.ToArray());
    }

    [Fact]
    public async Task AResponsesLargeMessageOverTheClientsLimitIsRefusedBeforeItIsRead()
    {
        await using ScriptedServer server = await ScriptedServer.StartAsync();
        await using var channel = new HttpMessageChannel(server.Address, maxMessageBytes: 1 << 20);
        server.Answer = (request, response) => response.Body.WriteAsync(Framed(MessageKind.Result, request.Id, new byte[2 << 20])).AsTask();
        await channel.SendAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = "f" });
        IpyRpcMessage failed = await ReceiveAsync(channel);
        Assert.Equal((MessageKind.Error, 1UL), (failed.Kind, failed.Id));
        Assert.Equal(ErrorCodes.TooLarge, RemoteError.Decode(failed.Body.Span, failed.Serialization).Code);
    }

    [Fact]
    public async Task ALargeRequestIsPostedAsTheMessageFramedFromItsOwnParts()
    {
        await using ScriptedServer server = await ScriptedServer.StartAsync();
        await using var channel = new HttpMessageChannel(server.Address, maxMessageBytes: 256L << 20);
        server.Answer = (request, response) => response.Body.WriteAsync(Framed(MessageKind.Result, request.Id, request.Parts[1])).AsTask();
        var call = new IpyRpcMessage { Kind = MessageKind.Call, Id = 7, Function = "f", Parts = [RandomBytes(100, 2), RandomBytes(12 << 20, 3), ReadOnlyMemory<byte>.Empty] };
        byte[] framed = MessageCodec.EncodeFramed(call);

        await channel.SendAsync(call);
        IpyRpcMessage result = await ReceiveAsync(channel);
        Assert.Equal(7UL, result.Id);
        Assert.True(call.Parts[1].Span.SequenceEqual(result.Body.Span));
        (byte[] hash, long length) = Assert.Single(server.Bodies);
        Assert.Equal(framed.Length, length);
        Assert.Equal(SHA256.HashData(framed), hash);
    }

    [Fact]
    public async Task ALargeRequestsPooledPartsGoBackOnlyOnceItIsDisposedAndNoWriteOfItIsRunning()
    {
        // The handler may still be writing a request's body when its response has come, and may write it again (a retry
        // on a fresh connection): its parts go back when both the request is done with and no write runs.
        var store = new PooledParts.LargeArrays();
        var pool = new PooledParts(store);
        int size = PooledParts.MaxPooled + 1;
        byte[] part = pool.Rent(size);
        RandomBytes(size, 4).CopyTo(part, 0);
        var message = new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = "f", Parts = [part.AsMemory(0, size)], Pooled = pool };
        byte[] framed = MessageCodec.EncodeFramed(message);

        var content = new FramedContent(message);
        Assert.Equal(framed.Length, content.Headers.ContentLength);
        var first = new MemoryStream();
        await content.CopyToAsync(first);
        Assert.Equal(framed, first.ToArray());

        var gate = new TaskCompletionSource();
        var slow = new GatedStream(gate.Task);
        Task writing = content.CopyToAsync(slow);
        await slow.Started.WaitAsync(TimeSpan.FromSeconds(10));
        content.Dispose();
        Assert.Equal(0, store.HeldBytes); // still being written: not given back
        gate.SetResult();
        await writing.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(framed, slow.Written.ToArray());
        Assert.Equal(part.Length, store.HeldBytes); // the write ended after the dispose: given back then, once

        content.Dispose();
        Assert.Equal(part.Length, store.HeldBytes);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => content.CopyToAsync(new MemoryStream()));
    }

    [Fact]
    public void ALargeRequestDisposedWithoutBeingWrittenGivesItsPartsBackAtOnce()
    {
        var store = new PooledParts.LargeArrays();
        var pool = new PooledParts(store);
        byte[] part = pool.Rent(PooledParts.MaxPooled + 1);
        var content = new FramedContent(new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = "f", Parts = [part], Pooled = pool });
        Assert.Equal(0, store.HeldBytes);
        content.Dispose();
        Assert.Equal(part.Length, store.HeldBytes);
    }

    /// <summary>A stream whose first write waits for a gate; it keeps what is written.</summary>
    private sealed class GatedStream(Task gate) : Stream
    {
        private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Started => _started.Task;

        public MemoryStream Written { get; } = new();

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written.Length;

        public override long Position { get => Written.Position; set => throw new NotSupportedException(); }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _started.TrySetResult();
            await gate;
            Written.Write(buffer.Span);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
