using System.Buffers;
using System.Net.WebSockets;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Http;

/// <summary>
/// One IpyRpc connection over a WebSocket: each WebSocket binary message carries one message (packed, one or more) in
/// the stream block format (docs/PROTOCOL.md), in both directions at any time, so the server can call
/// the client back and push events. Used by both ends; sends from many threads are serialized. Under the packed
/// subprotocol (<see cref="PackedSubProtocol"/>, which the client offers first and the server prefers) the messages
/// that queue behind a send leave together in one WebSocket message; under <see cref="SubProtocol"/>, on a connection
/// the client opened itself (no caller's HttpClient), they leave as WebSocket messages gathered into one write.
/// </summary>
public sealed class WebSocketMessageChannel : PushMessageChannel
{
    /// <summary>The WebSocket subprotocol IpyRpc speaks.</summary>
    public const string SubProtocol = "ipyrpc.v1";

    /// <summary>The same protocol with several IpyRpc messages allowed in one WebSocket message, one after another.</summary>
    public const string PackedSubProtocol = "ipyrpc.v1.packed";

    /// <summary>The most bytes of messages packed into one WebSocket message; a larger message goes in one of its own, not copied.</summary>
    internal const int MaxPacked = 64 * 1024;

    /// <summary>The buffer a connection reads its messages into; a larger message is read into an array of its own.</summary>
    internal const int ReadBufferBytes = 64 * 1024;

    /// <summary>The most bytes queued before a caller waits for its message to be written (the connection's backpressure).</summary>
    internal const int QueueBudget = 1024 * 1024;

    /// <summary>The largest frame a large message is sent in (its header included, it stays within the shared pool's 1 MiB arrays).</summary>
    internal const int FrameBytes = (1024 * 1024) - 16;

    private readonly WebSocket _socket;
    private readonly long _maxMessageBytes;
    private readonly bool _isServer;
    private readonly bool _packed;
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly CancellationTokenSource _closing = new();
    private readonly CancellationTokenSource _aborted = new();
    private readonly CancellationTokenSource _receiving;
    private readonly Timer _watch;
    private readonly Task _reader;
    private int _disposed;

    // A client's own connection (see ConnectAsync): its stream gathers the messages queued while one is being sent,
    // and the invoker that opened it, released with the channel.
    private readonly BatchingStream? _batching;
    private readonly IDisposable? _owned;

    // Grouped sending (see SendAsync): the queue, its bytes, whether a flush is scheduled or running, all under _queueGate.
    private readonly bool _grouping;
    private readonly object _queueGate = new();
    private readonly Flusher _flusher;
    private List<Outgoing> _queue = [];
    private List<Outgoing>? _spareQueue;
    private long _queuedBytes;
    private bool _flushing;
    private IpyRpcConnectionException? _sendFailure;

    /// <summary>The connection stream that gathers queued messages, when the channel opened the connection itself (for tests).</summary>
    internal BatchingStream? Batching => _batching;

    /// <summary>For tests: queued messages wait for a flush that is not scheduled (closing the channel still writes them).</summary>
    internal bool HoldFlushes { get; set; }

    /// <summary>Whether the connection speaks the packed subprotocol (several messages in one WebSocket message).</summary>
    public bool Packed => _packed;

    /// <summary>Wraps an open WebSocket and starts reading from it.</summary>
    /// <param name="socket">The open socket; when its subprotocol is <see cref="PackedSubProtocol"/>, messages are packed both ways.</param>
    /// <param name="maxMessageBytes">The largest message accepted from the other side; a bigger one closes the socket (1009, message too big).</param>
    /// <param name="isServer">Whether this is the server's end (an unreadable message is then answered with an error, as on other transports).</param>
    public WebSocketMessageChannel(WebSocket socket, long maxMessageBytes, bool isServer)
        : this(socket, maxMessageBytes, isServer, batching: null, owned: null)
    {
    }

    /// <summary>A channel over a socket whose connection stream is <paramref name="batching"/>; <paramref name="owned"/> is released with it.</summary>
    internal WebSocketMessageChannel(WebSocket socket, long maxMessageBytes, bool isServer, BatchingStream? batching, IDisposable? owned)
    {
        _batching = batching;
        _owned = owned;
        _socket = socket;
        _maxMessageBytes = maxMessageBytes;
        _isServer = isServer;
        _packed = socket.SubProtocol == PackedSubProtocol;
        _grouping = _packed || batching is not null;
        _flusher = new Flusher(this);
        _receiving = CancellationTokenSource.CreateLinkedTokenSource(_closing.Token, _aborted.Token);
        // A socket aborted by its keep-alive (no pong in time) does not always end a pending read on an
        // upgraded HTTP stream: watch its state, so a vanished peer ends the connection all the same.
        _watch = new Timer(static s => ((WebSocketMessageChannel)s!).Watch(), this, 250, 250);
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>
    /// Opens a client connection to the server's WebSocket endpoint (<c>ws://host:port/ipyrpc</c>).
    /// Headers of <paramref name="http"/> (such as <c>Authorization</c>) go with the upgrade request,
    /// so ASP.NET Core authentication applies as to any request.
    /// </summary>
    /// <exception cref="IpyRpcUnauthorizedException">The server answered 401 or 403.</exception>
    /// <exception cref="IpyRpcConnectionException">The server could not be reached or did not accept a WebSocket.</exception>
    public static Task<WebSocketMessageChannel> ConnectAsync(Uri endpoint, HttpClient? http, long maxMessageBytes, CancellationToken cancellationToken = default)
        => ConnectAsync(endpoint, http, maxMessageBytes, offerPacked: true, cancellationToken);

    /// <summary>Opens a client connection, offering the packed subprotocol first when <paramref name="offerPacked"/> (a server that does not know it chooses the other).</summary>
    internal static async Task<WebSocketMessageChannel> ConnectAsync(Uri endpoint, HttpClient? http, long maxMessageBytes, bool offerPacked, CancellationToken cancellationToken)
    {
        var socket = new ClientWebSocket();
        if (offerPacked) socket.Options.AddSubProtocol(PackedSubProtocol);
        socket.Options.AddSubProtocol(SubProtocol);
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.KeepAliveInterval = TimeSpan.FromSeconds(15);
        if (http is not null)
        {
            foreach (KeyValuePair<string, IEnumerable<string>> header in http.DefaultRequestHeaders)
            {
                socket.Options.SetRequestHeader(header.Key, string.Join(", ", header.Value));
            }
        }

        // Without a caller's HttpClient, the connection is opened through a handler of the channel's own, whose
        // connection stream lets the channel send the messages that queue up behind one another in one write.
        BatchingStream? batching = null;
        HttpMessageInvoker? own = http is null ? new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseCookies = false,
            ConnectCallback = async (context, ct) =>
            {
                var tcp = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await tcp.ConnectAsync(context.DnsEndPoint, ct).ConfigureAwait(false);
                }
                catch
                {
                    tcp.Dispose();
                    throw;
                }

                return batching = new BatchingStream(new System.Net.Sockets.NetworkStream(tcp, ownsSocket: true));
            },
        }) : null;
        try
        {
            await socket.ConnectAsync(endpoint, (HttpMessageInvoker?)http ?? own!, cancellationToken).ConfigureAwait(false);
        }
        catch (WebSocketException e)
        {
            var status = (int)socket.HttpStatusCode;
            socket.Dispose();
            own?.Dispose();
            if (status is 401 or 403)
            {
                throw new IpyRpcUnauthorizedException(new RemoteError
                {
                    Code = ErrorCodes.Unauthorized,
                    Message = $"The server refused the connection with HTTP {status} (missing or wrong credentials).",
                }, "connect");
            }

            throw new IpyRpcConnectionException(status is 0
                ? $"Could not open a WebSocket to {endpoint}: {e.Message}"
                : $"The server at {endpoint} answered HTTP {status} instead of accepting a WebSocket. If a proxy in between does not pass WebSockets, connect with HttpCarrier.Requests.", e);
        }
        catch (HttpRequestException e)
        {
            socket.Dispose();
            own?.Dispose();
            throw new IpyRpcConnectionException($"Could not reach {endpoint}: {e.Message}", e);
        }
        catch
        {
            socket.Dispose();
            own?.Dispose();
            throw;
        }

        return new WebSocketMessageChannel(socket, maxMessageBytes, isServer: false, batching, own);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Where messages are grouped (the packed subprotocol, or a client's own connection), the message is queued and this
    /// returns at once, as a write into a socket's buffer does; the queue is written by a flush that runs on the thread
    /// pool after the work already queued there (typically the callers whose replies just arrived, sending their next
    /// calls), so what they send meanwhile leaves together. While more than 1 MiB waits, a
    /// caller waits until its message is written, and one cancelled while it waits in the queue is not sent.
    /// </remarks>
    public override ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) == 1) throw new IpyRpcConnectionException("The WebSocket connection is closed.");
        if (_sendFailure is { } failed) throw failed;
        cancellationToken.ThrowIfCancellationRequested();
        Outgoing outgoing;
        if (message.PartBytes > FrameBytes)
        {
            // Larger than a frame: sent from its own parts (they go back once it is sent), in frames of at most FrameBytes.
            // A smaller one is framed into one array (pooled), one frame, one write.
            outgoing = new Outgoing(default, MessageCodec.FramePieces(message), message.Pooled, null);
        }
        else
        {
            ReadOnlyMemory<byte> bytes = MessageCodec.EncodeFramed(message, pooling: true, out PooledParts? pooled);
            message.Pooled?.Release(); // its parts are copied: the sender's arrays can go back
            outgoing = new Outgoing(bytes, null, pooled, null);
        }

        if (!_grouping)
        {
            return SendNowAsync(outgoing, cancellationToken);
        }

        TaskCompletionSource? sent = null;
        bool schedule;
        lock (_queueGate)
        {
            _queuedBytes += outgoing.Length;
            if (_queuedBytes > QueueBudget) sent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _queue.Add(outgoing with { Sent = sent });
            schedule = !_flushing;
            _flushing = true;
        }

        if (schedule && !HoldFlushes) ThreadPool.UnsafeQueueUserWorkItem(_flusher, preferLocal: false);
        return sent is null ? default : WaitWrittenAsync(sent, cancellationToken);
    }

    /// <summary>Waits until a queued message is written; cancelled while it is still queued, it is taken out and not sent.</summary>
    private async ValueTask WaitWrittenAsync(TaskCompletionSource sent, CancellationToken cancellationToken)
    {
        try
        {
            await sent.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Still queued, it is taken out; already taken to be written, it goes, as a message being sent would.
            lock (_queueGate)
            {
                int at = _queue.FindIndex(o => o.Sent == sent);
                if (at >= 0)
                {
                    _queuedBytes -= _queue[at].Length;
                    _queue[at].Pooled?.Release();
                    _queue.RemoveAt(at);
                }
            }

            throw;
        }
    }

    /// <summary>Writes the queue, on the thread pool, until it is empty; also what closing the channel does first.</summary>
    private async Task FlushAsync()
    {
        await _sendGate.WaitAsync().ConfigureAwait(false);
        try
        {
            while (true)
            {
                List<Outgoing> taken;
                lock (_queueGate)
                {
                    if (_queue.Count == 0 || _sendFailure is not null)
                    {
                        _flushing = false;
                        return;
                    }

                    taken = _queue;
                    _queue = _spareQueue ?? [];
                    _spareQueue = null;
                    _queuedBytes = 0;
                }

                try
                {
                    await (_packed ? WritePackedAsync(taken) : WriteGatheredAsync(taken)).ConfigureAwait(false);
                }
                catch (Exception e) when (e is WebSocketException or ObjectDisposedException or IOException)
                {
                    // The connection is gone (its reader hears of it too): whoever waits on a message hears it, and
                    // every later send fails. The arrays stay out of the pools: the socket may still hold one.
                    _batching?.Drop();
                    var failure = new IpyRpcConnectionException("The WebSocket connection is closed: " + e.Message, e);
                    List<Outgoing> left;
                    lock (_queueGate)
                    {
                        _sendFailure = failure;
                        left = _queue;
                        _queue = [];
                        _queuedBytes = 0;
                        _flushing = false;
                    }

                    foreach (Outgoing o in taken) o.Sent?.TrySetException(failure);
                    foreach (Outgoing o in left) o.Sent?.TrySetException(failure);
                    return;
                }

                foreach (Outgoing o in taken)
                {
                    o.Pooled?.Release();
                    o.Sent?.TrySetResult();
                }

                taken.Clear();
                lock (_queueGate) _spareQueue ??= taken;
            }
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>Sends one message now, after any send under way.</summary>
    private async ValueTask SendNowAsync(Outgoing outgoing, CancellationToken cancellationToken)
    {
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SendOneAsync(outgoing, cancellationToken).ConfigureAwait(false);
            outgoing.Pooled?.Release(); // sent: its arrays can go back (not after a failure, when the socket may still hold one)
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or IOException)
        {
            throw new IpyRpcConnectionException("The WebSocket connection is closed: " + e.Message, e);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>
    /// Sends one message as a WebSocket message of its own: one frame when it is framed already; a large one from its
    /// own parts, in frames of at most <see cref="FrameBytes"/>. The socket copies each frame into a send buffer it
    /// rents from the shared pool, which keeps what it is given back: one frame the size of the message would leave an
    /// array that large with the pool, a sending thread each.
    /// </summary>
    private async ValueTask SendOneAsync(Outgoing outgoing, CancellationToken cancellationToken)
    {
        if (outgoing.Pieces is not { } pieces)
        {
            await _socket.SendAsync(outgoing.Bytes, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
            return;
        }

        ReadOnlyMemory<byte> frame = default; // held back until the next, so that the last one can say it ends the message
        for (int i = 0; i < pieces.Count; i++)
        {
            for (ReadOnlyMemory<byte> piece = pieces[i]; !piece.IsEmpty; piece = piece[Math.Min(piece.Length, FrameBytes)..])
            {
                if (!frame.IsEmpty) await _socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: false, cancellationToken).ConfigureAwait(false);
                frame = piece[..Math.Min(piece.Length, FrameBytes)];
            }
        }

        await _socket.SendAsync(frame, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes queued messages packed one after another into WebSocket messages of up to 64 KiB (a larger message in one
    /// of its own, not copied).
    /// </summary>
    private async ValueTask WritePackedAsync(List<Outgoing> queued)
    {
        long total = 0;
        foreach (Outgoing o in queued) total += o.Pieces is null && o.Length <= MaxPacked ? o.Length : 0;
        byte[]? pack = total > 0 ? ArrayPool<byte>.Shared.Rent((int)Math.Min(total, MaxPacked)) : null;
        int packed = 0;
        foreach (Outgoing o in queued)
        {
            if (packed > 0 && (o.Pieces is not null || packed + o.Length > MaxPacked))
            {
                await _socket.SendAsync(pack.AsMemory(0, packed), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
                packed = 0;
            }

            if (o.Pieces is not null || o.Length > MaxPacked)
            {
                await SendOneAsync(o, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            o.Bytes.Span.CopyTo(pack.AsSpan(packed));
            packed += o.Bytes.Length;
        }

        if (packed > 0) await _socket.SendAsync(pack.AsMemory(0, packed), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
        if (pack is not null) ArrayPool<byte>.Shared.Return(pack); // written (after a failure, it stays out of the pool)
    }

    /// <summary>Writes queued messages, each a WebSocket message of its own, gathered into one write of the connection stream (up to 64 KiB).</summary>
    private async ValueTask WriteGatheredAsync(List<Outgoing> queued)
    {
        _batching!.Hold();
        long gathered = 0;
        foreach (Outgoing o in queued)
        {
            if (o.Pieces is not null || gathered + o.Length > BatchingStream.MaxGathered)
            {
                // What was gathered goes first, and a message larger than a write gathers goes on its own, straight
                // through, not copied.
                await _batching.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
                gathered = 0;
                bool alone = o.Pieces is not null || o.Length > BatchingStream.MaxGathered;
                if (alone) await SendOneAsync(o, CancellationToken.None).ConfigureAwait(false);
                _batching.Hold();
                if (alone) continue;
            }

            await _socket.SendAsync(o.Bytes, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
            gathered += o.Length;
        }

        await _batching.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// A message to send: framed into <c>Bytes</c>, or a large one as its <c>Pieces</c>; <c>Pooled</c>, the arrays either
    /// is, go back once it is sent. <c>Sent</c> is there when its caller waits until it is written.
    /// </summary>
    private readonly record struct Outgoing(ReadOnlyMemory<byte> Bytes, FramedPieces? Pieces, PooledParts? Pooled, TaskCompletionSource? Sent)
    {
        public long Length => Pieces?.Length ?? Bytes.Length;
    }

    /// <summary>Runs the channel's flush on the thread pool (one instance a channel: scheduling a flush allocates nothing).</summary>
    private sealed class Flusher(WebSocketMessageChannel channel) : IThreadPoolWorkItem
    {
        public void Execute() => _ = channel.FlushAsync();
    }

    private void Watch()
    {
        if (_socket.State == WebSocketState.Aborted && !_aborted.IsCancellationRequested) _aborted.Cancel();
    }

    /// <summary>
    /// Reads messages into a 64 KiB buffer, the connection's for its life. A message that does not fit is read into an
    /// array of its own, sized by its frame's prefix (pooled, as large parts are) and handed to the message whole, so it
    /// is neither copied afterwards nor kept by the connection once it has been read; a WebSocket message whose prefix
    /// does not say its size (several packed messages, or bytes that are no message) grows an array of its own instead,
    /// not pooled, which the messages are copied out of.
    /// </summary>
    private async Task ReadLoopAsync()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ReadBufferBytes);
        long limit = _maxMessageBytes + MessageCodec.FramePrefixBytes + ProtocolVersion.MaxHeaderBytes;
        Exception? failure = null;
        byte[] target = buffer; // where the message being read goes: the buffer, or an array of its own
        PooledParts? own = null; // the pooled arrays target is, when it is one
        try
        {
            while (true)
            {
                int filled = 0;
                long declared = -1; // the length target was sized for from the first frame's prefix
                ValueWebSocketReceiveResult result;
                bool tooBig = false;
                do
                {
                    if (filled == target.Length)
                    {
                        // Sized by the first frame's prefix the first time (when it is within the limit), and rented as a
                        // large part's array is. Otherwise doubled, and not pooled: what a prefix cannot size is several
                        // packed messages from a sender that packs large ones (rare), or bytes that are no message, which
                        // must not fill the shared pool with arrays it keeps.
                        long next = declared < 0 ? MessageCodec.DeclaredFrameLength(target.AsSpan(0, filled)) : -1;
                        declared = next > filled && next <= Math.Min(limit, Array.MaxLength) ? next : -1;
                        long size = declared > 0 ? declared : Math.Min(Math.Min((long)target.Length * 2, limit + 1), Array.MaxLength);
                        PooledParts? pool = declared > 0 && PooledParts.ShouldPool(size) ? new PooledParts() : null;
                        byte[] bigger = pool is not null ? pool.Rent((int)size) : GC.AllocateUninitializedArray<byte>((int)size);
                        target.AsSpan(0, filled).CopyTo(bigger);
                        own?.Release();
                        (target, own) = (bigger, pool);
                    }

                    result = await _socket.ReceiveAsync(target.AsMemory(filled), _receiving.Token).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await CloseQuietlyAsync(WebSocketCloseStatus.NormalClosure, "bye").ConfigureAwait(false);
                        return;
                    }

                    filled += result.Count;
                    if (filled > limit)
                    {
                        tooBig = true; // refused before the rest is read
                        break;
                    }
                }
                while (!result.EndOfMessage);

                if (tooBig)
                {
                    await CloseQuietlyAsync(WebSocketCloseStatus.MessageTooBig, $"A message is larger than the limit of {_maxMessageBytes} bytes.").ConfigureAwait(false);
                    failure = new ProtocolException(ErrorCodes.TooLarge, $"A message larger than the limit of {_maxMessageBytes} bytes arrived; the WebSocket was closed.");
                    await DrainAfterCloseAsync(buffer).ConfigureAwait(false);
                    return;
                }

                // The message leaves the array it was read into (in a method of its own, so this loop keeps no reference
                // to that array while it waits for the next).
                (byte[] read, PooledParts? readPool) = (target, own);
                (target, own) = (buffer, null);
                await DeliverReadAsync(read, filled, read != buffer && filled == declared, readPool).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested)
        {
        }
        catch (OperationCanceledException) when (_aborted.IsCancellationRequested)
        {
            failure = new IOException("The WebSocket was aborted: the other side stopped answering its keep-alive pings.");
        }
        catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException)
        {
            failure = e;
        }
        finally
        {
            own?.Release(); // a message cut off by the close, or refused as too large
            ArrayPool<byte>.Shared.Return(buffer);
            CompleteReceiving(failure);
        }
    }

    /// <summary>
    /// After this end has closed for a message too large while the other may still be sending the rest of it: reads and
    /// drops what comes until the other side's close, for 2 s at most. Closing the connection with bytes unread would
    /// reset it, and the other side could lose the close, and with it the reason.
    /// </summary>
    private async Task DrainAfterCloseAsync(byte[] buffer)
    {
        try
        {
            using var grace = CancellationTokenSource.CreateLinkedTokenSource(_aborted.Token);
            grace.CancelAfter(TimeSpan.FromSeconds(2));
            while ((await _socket.ReceiveAsync(buffer.AsMemory(), grace.Token).ConfigureAwait(false)).MessageType != WebSocketMessageType.Close)
            {
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Delivers what one WebSocket message held: the message whose array <paramref name="read"/> is, when it is
    /// <paramref name="whole"/> (exactly the message its prefix declared, in an array of its own: no copy), or else the
    /// messages copied out of it; <paramref name="pool"/>, the arrays <paramref name="read"/> is, then goes back.
    /// </summary>
    private async ValueTask DeliverReadAsync(byte[] read, int filled, bool whole, PooledParts? pool)
    {
        if (whole)
        {
            IpyRpcMessage message;
            try
            {
                message = MessageCodec.DecodeFramed(read.AsMemory(0, filled), _maxMessageBytes, pool);
            }
            catch (ProtocolException e)
            {
                pool?.Release();
                await RefuseAsync(e).ConfigureAwait(false);
                return;
            }

            Deliver(message);
            return;
        }

        try
        {
            if (_packed)
            {
                await DeliverPackedAsync(read.AsMemory(0, filled)).ConfigureAwait(false);
                return;
            }

            IpyRpcMessage message;
            try
            {
                message = DecodeOwn(read.AsSpan(0, filled));
            }
            catch (ProtocolException e)
            {
                await RefuseAsync(e).ConfigureAwait(false);
                return;
            }

            Deliver(message);
        }
        finally
        {
            pool?.Release();
        }
    }

    /// <summary>
    /// Delivers the messages a packed WebSocket message carries, in order. One that cannot be read is refused and the
    /// next is read after it; one whose prefix does not fit in what is left (or cannot be read) is refused with the rest.
    /// </summary>
    private async ValueTask DeliverPackedAsync(ReadOnlyMemory<byte> packed)
    {
        while (!packed.IsEmpty)
        {
            long length = MessageCodec.DeclaredFrameLength(packed.Span);
            if (length <= MessageCodec.FramePrefixBytes || length > packed.Length)
            {
                try
                {
                    // Says what is wrong with it: a prefix cut short, an empty or too large header, a size past the limit, or more bytes than came.
                    MessageCodec.DecodeFramed(packed, _maxMessageBytes);
                    throw new ProtocolException(ErrorCodes.BadMessage, "A packed WebSocket message ends inside a message.");
                }
                catch (ProtocolException e)
                {
                    await RefuseAsync(e).ConfigureAwait(false);
                }

                return;
            }

            IpyRpcMessage message;
            try
            {
                message = DecodeOwn(packed.Span[..(int)length]);
            }
            catch (ProtocolException e)
            {
                await RefuseAsync(e).ConfigureAwait(false);
                packed = packed[(int)length..];
                continue;
            }

            Deliver(message);
            packed = packed[(int)length..];
        }
    }

    /// <summary>
    /// Decodes one framed message into an array of its own: parts are slices of the bytes they were read from, and the
    /// read buffer is reused (a large message's array is pooled, given back by its last reader).
    /// </summary>
    private IpyRpcMessage DecodeOwn(ReadOnlySpan<byte> framed)
    {
        PooledParts? pool = PooledParts.ShouldPool(framed.Length) ? new PooledParts() : null;
        byte[] own = pool is not null ? pool.Rent(framed.Length) : GC.AllocateUninitializedArray<byte>(framed.Length);
        framed.CopyTo(own);
        return MessageCodec.DecodeFramed(own.AsMemory(0, framed.Length), _maxMessageBytes, pool);
    }

    // A message that cannot be read: the server answers it, as every transport does; the client fails the call it names.
    private async Task RefuseAsync(ProtocolException e)
    {
        if (!_isServer)
        {
            if (e.Id != 0) DeliverError(e.Id, e.Code, "The server's message could not be read: " + e.Message);
            return;
        }

        try
        {
            await SendAsync(new IpyRpcMessage
            {
                Kind = MessageKind.Error,
                Id = e.Id,
                Parts = [new RemoteError { Code = e.Code, Message = e.Message }.Encode(Serialization.MessagePack)],
            }).ConfigureAwait(false);
        }
        catch (IpyRpcConnectionException)
        {
        }
    }

    private async Task CloseQuietlyAsync(WebSocketCloseStatus status, string description)
    {
        try
        {
            using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _sendGate.WaitAsync(grace.Token).ConfigureAwait(false);
            try
            {
                if (_socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                {
                    await _socket.CloseOutputAsync(status, description, grace.Token).ConfigureAwait(false);
                }
            }
            finally
            {
                _sendGate.Release();
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
        }
    }

    /// <summary>Closes the WebSocket (what is queued is written, then a normal close, then the socket is released).</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _watch.DisposeAsync().ConfigureAwait(false);
        if (_grouping)
        {
            // What was queued goes before the close, unless the other side has stopped reading: then the write under
            // way is given up on with the socket below.
            try
            {
                await FlushAsync().WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
            }
        }
        await CloseQuietlyAsync(WebSocketCloseStatus.NormalClosure, "closed").ConfigureAwait(false);
        _closing.Cancel();
        try
        {
            await _reader.WaitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }

        _socket.Abort();
        _socket.Dispose();
        _owned?.Dispose();
        CompleteReceiving();
    }
}
