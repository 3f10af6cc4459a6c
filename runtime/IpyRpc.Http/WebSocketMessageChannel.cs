using System.Buffers;
using System.Net.WebSockets;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Http;

/// <summary>
/// One IpyRpc connection over a WebSocket: each WebSocket binary message carries one message in the
/// stream block format (docs/PROTOCOL.md), in both directions at any time, so the server can call
/// the client back and push events. Used by both ends; sends from many threads are serialized, and on a connection
/// the client opened itself (no caller's HttpClient), messages that queue behind a send leave together in one write.
/// </summary>
public sealed class WebSocketMessageChannel : PushMessageChannel
{
    /// <summary>The WebSocket subprotocol IpyRpc speaks.</summary>
    public const string SubProtocol = "ipyrpc.v1";

    private readonly WebSocket _socket;
    private readonly long _maxMessageBytes;
    private readonly bool _isServer;
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
    private readonly List<Outgoing> _outgoing = [];
    private bool _sending; // under _outgoing: a caller is sending, and sends what queues meanwhile

    /// <summary>The connection stream that gathers queued messages, when the channel opened the connection itself (for tests).</summary>
    internal BatchingStream? Batching => _batching;

    /// <summary>Wraps an open WebSocket and starts reading from it.</summary>
    /// <param name="socket">The open socket.</param>
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
    public static async Task<WebSocketMessageChannel> ConnectAsync(Uri endpoint, HttpClient? http, long maxMessageBytes, CancellationToken cancellationToken = default)
    {
        var socket = new ClientWebSocket();
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
    public override async ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _disposed) == 1) throw new IpyRpcConnectionException("The WebSocket connection is closed.");
        ReadOnlyMemory<byte> bytes = MessageCodec.EncodeFramed(message, pooling: true, out PooledParts? pooled);
        message.Pooled?.Release(); // its parts are copied: the sender's arrays can go back
        if (_batching is null)
        {
            await SendNowAsync(bytes, pooled, cancellationToken).ConfigureAwait(false);
            return;
        }

        // Group sending: the caller that finds nobody sending sends its message at once, then whatever other callers
        // queued meanwhile, all of it in one write; each of those returns once its message is on its way.
        Outgoing? queued = null;
        lock (_outgoing)
        {
            if (_sending) _outgoing.Add(queued = new Outgoing(bytes, pooled));
            else _sending = true;
        }

        if (queued is not null)
        {
            try
            {
                await queued.Sent.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Still queued: it is not sent. Already taken into a batch: it goes, as a message being sent would.
                bool removed;
                lock (_outgoing) removed = _outgoing.Remove(queued);
                if (removed) queued.Pooled?.Release();
                throw;
            }

            return;
        }

        // The sender's own message first. Its cancellation is its own: what others queued is sent all the same.
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? cancelled = null;
        try
        {
            await SendNowAsync(bytes, pooled, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            cancelled = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
        }
        catch (Exception e)
        {
            FailQueued(e);
            throw;
        }

        try
        {
            while (true)
            {
                Outgoing[] batch;
                lock (_outgoing)
                {
                    if (_outgoing.Count == 0)
                    {
                        _sending = false;
                        break;
                    }

                    batch = [.. _outgoing];
                    _outgoing.Clear();
                }

                await SendBatchAsync(batch).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            FailQueued(e);
            if (cancelled is null) throw;
        }

        cancelled?.Throw();
    }

    /// <summary>Fails what is still queued with the sender's failure, and lets the next caller send.</summary>
    private void FailQueued(Exception failure)
    {
        Outgoing[] left;
        lock (_outgoing)
        {
            left = [.. _outgoing];
            _outgoing.Clear();
            _sending = false;
        }

        foreach (Outgoing o in left) o.Sent.TrySetException(failure);
    }

    /// <summary>Sends one message now, after any send under way.</summary>
    private async ValueTask SendNowAsync(ReadOnlyMemory<byte> bytes, PooledParts? pooled, CancellationToken cancellationToken)
    {
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Binary, endOfMessage: true, cancellationToken).ConfigureAwait(false);
            pooled?.Release(); // sent: the framing array can go back (not after a failure, when the socket may still hold it)
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

    /// <summary>Sends queued messages as one write of the connection stream; each caller hears of its own.</summary>
    private async ValueTask SendBatchAsync(Outgoing[] batch)
    {
        await _sendGate.WaitAsync().ConfigureAwait(false);
        try
        {
            _batching!.Hold();
            long gathered = 0;
            foreach (Outgoing o in batch)
            {
                if (gathered + o.Bytes.Length > BatchingStream.MaxGathered)
                {
                    // A write gathers up to 64 KiB: what was gathered goes first, and a message larger than that goes
                    // on its own, straight through, not copied.
                    await _batching.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
                    gathered = 0;
                    bool alone = o.Bytes.Length > BatchingStream.MaxGathered;
                    if (alone) await _socket.SendAsync(o.Bytes, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
                    _batching.Hold();
                    if (alone) continue;
                }

                await _socket.SendAsync(o.Bytes, WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
                gathered += o.Bytes.Length;
            }

            await _batching.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or ObjectDisposedException or IOException)
        {
            _batching!.Drop();
            var failure = new IpyRpcConnectionException("The WebSocket connection is closed: " + e.Message, e);
            foreach (Outgoing o in batch) o.Sent.TrySetException(failure);
            throw failure;
        }
        finally
        {
            _sendGate.Release();
        }

        foreach (Outgoing o in batch)
        {
            o.Pooled?.Release();
            o.Sent.TrySetResult();
        }
    }

    /// <summary>A message queued behind another caller's send.</summary>
    private sealed class Outgoing(ReadOnlyMemory<byte> bytes, PooledParts? pooled)
    {
        public ReadOnlyMemory<byte> Bytes { get; } = bytes;

        public PooledParts? Pooled { get; } = pooled;

        // Its caller goes on from the thread pool, not inside the sender's loop.
        public TaskCompletionSource Sent { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private void Watch()
    {
        if (_socket.State == WebSocketState.Aborted && !_aborted.IsCancellationRequested) _aborted.Cancel();
    }

    private async Task ReadLoopAsync()
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        Exception? failure = null;
        try
        {
            while (true)
            {
                int filled = 0;
                ValueWebSocketReceiveResult result;
                bool tooBig = false;
                do
                {
                    if (filled == buffer.Length)
                    {
                        byte[] bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, int.MaxValue - 64));
                        buffer.AsSpan(0, filled).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    result = await _socket.ReceiveAsync(buffer.AsMemory(filled), _receiving.Token).ConfigureAwait(false);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        await CloseQuietlyAsync(WebSocketCloseStatus.NormalClosure, "bye").ConfigureAwait(false);
                        return;
                    }

                    filled += result.Count;
                    if (filled > _maxMessageBytes + MessageCodec.FramePrefixBytes + ProtocolVersion.MaxHeaderBytes)
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
                    return;
                }

                // Parts are slices of the bytes they were read from: give each message its own array (a large one
                // pooled, given back by its last reader).
                PooledParts? pool = PooledParts.ShouldPool(filled) ? new PooledParts() : null;
                byte[] own = pool is not null ? pool.Rent(filled) : GC.AllocateUninitializedArray<byte>(filled);
                buffer.AsSpan(0, filled).CopyTo(own);
                IpyRpcMessage message;
                try
                {
                    message = MessageCodec.DecodeFramed(own.AsMemory(0, filled), _maxMessageBytes, pool);
                }
                catch (ProtocolException e)
                {
                    await RefuseAsync(e).ConfigureAwait(false);
                    continue;
                }

                Deliver(message);
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
            ArrayPool<byte>.Shared.Return(buffer);
            CompleteReceiving(failure);
        }
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

    /// <summary>Closes the WebSocket (a normal close, then the socket is released).</summary>
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _watch.DisposeAsync().ConfigureAwait(false);
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
