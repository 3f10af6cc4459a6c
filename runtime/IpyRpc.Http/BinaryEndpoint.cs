using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Http;

/// <summary>
/// The binary protocol over HTTP: the request body is one framed message; the response streams
/// framed messages back (a call's output as it is written, then its result or error). A client's
/// requests belong to one logical connection, named by the <c>IpyRpc-Connection</c> header the
/// server hands out with its hello: its authentication, limits and state hold across requests.
/// Aborting a request cancels the call it carries.
/// </summary>
internal sealed class BinaryEndpoint : IAsyncDisposable
{
    public const string ContentType = "application/x-ipyrpc";
    public const string ConnectionHeader = "IpyRpc-Connection";

    /// <summary>The response header of a <c>hello</c> that says how long the connection may go without a request before it ends, in seconds (absent: never).</summary>
    public const string IdleTimeoutHeader = "IpyRpc-Idle-Timeout";

    private readonly IpyRpcServer _server;
    private readonly IpyRpcHttpOptions _options;
    private readonly ConcurrentDictionary<string, HttpConnection> _connections = new(StringComparer.Ordinal);
    private readonly Timer _sweeper;
    private readonly CancellationTokenSource _stopping = new();
    private int _held; // connections in _connections, counted as they are opened and forgotten (against MaxConnections)
    private long _refusedWhileFull; // requests refused for want of room since the last warning about it
    private long _fullWarnedAt = long.MinValue; // Environment.TickCount64 of that warning

    // Connections the server closed on purpose (IpyRpcConnection.CloseAsync), with the close their client is told when it
    // next names them: it must not connect again in silence (as it would after a restart) when its access was revoked.
    private const int RememberedCloses = 1024;
    private readonly ConcurrentDictionary<string, IpyRpcMessage> _closedByServer = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _closedInOrder = new();

    public BinaryEndpoint(IpyRpcServer server, IpyRpcHttpOptions options)
    {
        if (options.ConnectionIdleTimeout <= TimeSpan.Zero && options.ConnectionIdleTimeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.ConnectionIdleTimeout, "ConnectionIdleTimeout must be positive, or Timeout.InfiniteTimeSpan for none.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConnections, 1, nameof(options));
        _server = server;
        _options = options;
        // Often enough that a connection ends within a quarter of its timeout after it is due.
        double idle = options.ConnectionIdleTimeout == Timeout.InfiniteTimeSpan ? 120_000 : options.ConnectionIdleTimeout.TotalMilliseconds;
        TimeSpan every = TimeSpan.FromMilliseconds(Math.Clamp(idle / 4, 100, 30_000));
        _sweeper = new Timer(static s => ((BinaryEndpoint)s!).Sweep(), this, every, every);
    }

    public int Connections => _connections.Count;

    public async Task HandleAsync(HttpContext context)
    {
        if (!_advertised) Advertise(context);
        HttpResponse response = context.Response;
        try
        {
            await HandleCoreAsync(context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !context.RequestAborted.IsCancellationRequested)
        {
            // Never an empty 500: log it, and answer with an IpyRpc error while the response can still carry one.
            _server.Log.LogError(e, "The binary endpoint failed on a request from {Remote}", context.Connection.RemoteIpAddress);
            if (!response.HasStarted)
            {
                await WriteErrorAsync(response, StatusCodes.Status500InternalServerError, 0, ErrorCodes.Internal, $"The server failed handling this request: {e.GetType().Name}: {e.Message}").ConfigureAwait(false);
            }
        }
    }

    private async Task HandleCoreAsync(HttpContext context)
    {
        HttpResponse response = context.Response;
        if (HttpMethods.IsGet(context.Request.Method) && IsWebSocketUpgrade(context.Request))
        {
            await ServeWebSocketAsync(context).ConfigureAwait(false);
            return;
        }

        if (!HttpMethods.IsPost(context.Request.Method))
        {
            response.Headers.Allow = "POST";
            await WriteErrorAsync(response, StatusCodes.Status405MethodNotAllowed, 0, ErrorCodes.BadMessage, $"Send IpyRpc messages with POST, or open a WebSocket (GET with Upgrade: websocket), not a plain {context.Request.Method}.");
            return;
        }

        string? type = context.Request.ContentType;
        if (type is null || !(type.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase) || type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase)))
        {
            await WriteErrorAsync(response, StatusCodes.Status415UnsupportedMediaType, 0, ErrorCodes.BadMessage, $"The binary endpoint takes Content-Type {ContentType}, not {type ?? "none"}. JSON-RPC calls go to the JSON endpoint.");
            return;
        }

        long limit = _server.Options.MaxMessageBytes;
        // A large call's arguments: given back when its job ends.
        PooledParts? pool = context.Request.ContentLength is long declared && PooledParts.ShouldPool(declared) ? new PooledParts() : null;
        ReadOnlyMemory<byte>? body = await BodyReader.ReadAsync(context, limit + MessageCodec.FramePrefixBytes, pool);
        if (body is null)
        {
            await WriteErrorAsync(response, StatusCodes.Status413PayloadTooLarge, 0, ErrorCodes.TooLarge, $"The message is larger than the server's limit of {limit} bytes.");
            return;
        }

        IpyRpcMessage message;
        try
        {
            message = MessageCodec.DecodeFramed(body.Value, limit, pool);
        }
        catch (ProtocolException e)
        {
            int status = e.Code == ErrorCodes.TooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest;
            await WriteErrorAsync(response, status, e.Id, e.Code, e.Message);
            return;
        }

        if ((message.Kind == MessageKind.Cancel && message.JobId is null) || message.Kind is MessageKind.Event or MessageKind.Pong or MessageKind.Result or MessageKind.Error or MessageKind.Output)
        {
            // Over HTTP a call is cancelled by aborting its request; nothing else expects a reply.
            response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }

        if (message.Kind is MessageKind.Close or MessageKind.Credit)
        {
            await ToKnownConnectionAsync(context, message).ConfigureAwait(false);
            return;
        }

        (HttpConnection? held, Found found) = Find(context, message);
        switch (found)
        {
            case Found.Gone when _closedByServer.TryGetValue(context.Request.Headers[ConnectionHeader].ToString(), out IpyRpcMessage? close):
                // Closed by the server on purpose: the client hears the close, and why, as a duplex client would.
                await WriteAsync(response, StatusCodes.Status404NotFound, close).ConfigureAwait(false);
                return;
            case Found.Gone:
                // Not a new connection in its place: the client would go on without what the old one held (its
                // authentication above all). Nothing ran, so the client may connect again and send it again.
                await WriteErrorAsync(response, StatusCodes.Status404NotFound, message.Id, ErrorCodes.ConnectionLost,
                    "The server does not hold the connection this request names: it ended (closed, idle for longer than the server's timeout, or the server restarted). Connect again.");
                return;
            case Found.Forbidden:
                await WriteErrorAsync(response, StatusCodes.Status403Forbidden, message.Id, ErrorCodes.Unauthorized,
                    $"This connection belongs to another principal than the one this request authenticated as ({context.User.Identity?.Name}); open a connection of your own.");
                return;
            case Found.Full:
                await WriteErrorAsync(response, StatusCodes.Status503ServiceUnavailable, message.Id, ErrorCodes.TooManyRequests,
                    $"The server holds {_options.MaxConnections} connections over HTTP requests, as many as it allows (IpyRpcHttpOptions.MaxConnections); try again once some have closed.");
                return;
        }

        HttpConnection connection = held!; // found or opened
        bool ephemeral = found == Found.ForThisRequest;
        if (!ephemeral) response.Headers[ConnectionHeader] = connection.Id;
        if (message.Kind == MessageKind.Hello && _options.ConnectionIdleTimeout != Timeout.InfiniteTimeSpan)
        {
            response.Headers[IdleTimeoutHeader] = _options.ConnectionIdleTimeout.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-cache";
        var route = new Route(response, context.RequestAborted);
        if (!connection.Routes.TryAdd(message.Id, route))
        {
            await WriteErrorAsync(response, StatusCodes.Status409Conflict, message.Id, ErrorCodes.BadMessage, $"Request id {message.Id} is already in use on this connection by a request that has not finished.");
            return;
        }

        // A call cancelled (its request aborted) while it starts (an authorizer deciding, a durable queue's round trip) is
        // cancelled at once, so that it never starts; the cancel below covers a request aborted before it was read.
        using CancellationTokenRegistration abortedWhileStarting = message.Kind == MessageKind.Call
            ? context.RequestAborted.UnsafeRegister(static state =>
            {
                var (session, id) = ((ServerSession, ulong))state!;
                _ = session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Cancel, Id = id }).AsTask();
            }, (connection.Session, message.Id))
            : default;
        try
        {
            await RequestLending.HandleAsync(connection.Session, message).ConfigureAwait(false);
            await route.Done.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The caller went away or cancelled: a call it carried is cancelled (an attach stops following).
            if (message.Kind is MessageKind.Call or MessageKind.Attach)
            {
                await connection.Session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Cancel, Id = message.Id }).ConfigureAwait(false);
            }
        }
        finally
        {
            connection.Routes.TryRemove(message.Id, out _);
            connection.Touch();
            if (ephemeral && Forget(connection))
            {
                await connection.Session.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// A message about a connection the client already has, answered with 204 and no reply of its own: a <c>close</c>
    /// ends the connection its header names now, as the client said (its calls still running are cancelled, and the
    /// server hears of the disconnect), instead of when the idle sweep finds it; a <c>credit</c> is for a stream another
    /// request of that connection carries. One that names no connection this endpoint holds (it closed, perhaps while
    /// the message was on its way) changes nothing, and opens none.
    /// </summary>
    private async Task ToKnownConnectionAsync(HttpContext context, IpyRpcMessage message)
    {
        // Looked up once: a connection that closes meanwhile (its close racing this request) is found or not, and
        // none is opened in its place.
        if (context.Request.Headers[ConnectionHeader].ToString() is not { Length: > 0 } id || !_connections.TryGetValue(id, out HttpConnection? connection))
        {
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }

        if (!Admit(context, connection))
        {
            await WriteErrorAsync(context.Response, StatusCodes.Status403Forbidden, message.Id, ErrorCodes.Unauthorized,
                $"This connection belongs to another principal than the one this request authenticated as ({context.User.Identity?.Name}).");
            return;
        }

        if (message.Kind == MessageKind.Credit)
        {
            await connection.Session.HandleAsync(message).ConfigureAwait(false);
        }
        else if (Forget(connection))
        {
            await connection.Session.HandleAsync(message).ConfigureAwait(false);
            await connection.Session.DisposeAsync().ConfigureAwait(false);
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private bool _advertised;

    /// <summary>
    /// Pointers to values this server holds name an HTTP address once one is known: in an app that
    /// maps the endpoints itself, the local address of the first request (a host that knows a better
    /// public name advertises it with <c>server.Data.Advertise</c> before serving).
    /// </summary>
    private void Advertise(HttpContext context)
    {
        _advertised = true;
        string protocol = context.Request.IsHttps ? "https" : "http";
        if (_server.Data.Endpoints.Any(e => e.Protocol == protocol) || context.Connection.LocalIpAddress is not { } ip) return;
        string host = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        _server.Data.Advertise(new PointerEndpoint(protocol, host, context.Connection.LocalPort, _options.BinaryPath.TrimEnd('/')));
    }

    private static bool IsWebSocketUpgrade(HttpRequest request)
        => request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase);

    // The packed form first: a client that offers it sends and receives several messages in one WebSocket message.
    private static readonly string[] WebSocketSubProtocols = [WebSocketMessageChannel.PackedSubProtocol, WebSocketMessageChannel.SubProtocol];

    /// <summary>
    /// A WebSocket carries one whole connection: served like a ZeroMQ or in-process peer until either
    /// side closes it or the application stops (then the client hears <c>server_stopping</c>).
    /// </summary>
    private async Task ServeWebSocketAsync(HttpContext context)
    {
        System.Net.WebSockets.WebSocket? socket = await WebSocketAcceptor.AcceptAsync(context, WebSocketSubProtocols, _options.WebSocketKeepAlive, _options.WebSocketKeepAliveTimeout).ConfigureAwait(false);
        if (socket is null)
        {
            await WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, 0, ErrorCodes.BadMessage,
                $"This WebSocket request cannot be accepted: it must be an HTTP/1.1 upgrade (GET with Upgrade: websocket, Sec-WebSocket-Version: 13 and a Sec-WebSocket-Key) and offer the subprotocol {WebSocketMessageChannel.SubProtocol} or {WebSocketMessageChannel.PackedSubProtocol}.").ConfigureAwait(false);
            return;
        }

        var connection = new IpyRpcConnection("websocket", Address(context), RequestUser.Authenticated(context));
        await using var channel = new WebSocketMessageChannel(socket, _server.Options.MaxMessageBytes, isServer: true);
        try
        {
            await _server.ServeAsync(channel, connection, _stopping.Token).ConfigureAwait(false);
        }
        catch (ObjectDisposedException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private enum Found
    {
        /// <summary>The connection the request names.</summary>
        Held,

        /// <summary>A new connection, kept for the client's later requests (the request is a <c>hello</c>).</summary>
        Opened,

        /// <summary>A new connection for this request only (it names none).</summary>
        ForThisRequest,

        /// <summary>None: the connection the request names is not held (it ended, or never was).</summary>
        Gone,

        /// <summary>None: the connection the request names belongs to another principal.</summary>
        Forbidden,

        /// <summary>None: a new one would be one more than <see cref="IpyRpcHttpOptions.MaxConnections"/>.</summary>
        Full,
    }

    /// <summary>The request's connection: the one its header names; else a new one, kept when the request is a hello.</summary>
    private (HttpConnection? Connection, Found How) Find(HttpContext context, IpyRpcMessage message)
    {
        if (message.Kind != MessageKind.Hello && context.Request.Headers[ConnectionHeader].ToString() is { Length: > 0 } id)
        {
            if (!_connections.TryGetValue(id, out HttpConnection? known)) return (null, Found.Gone);
            return Admit(context, known) ? (known, Found.Held) : (null, Found.Forbidden);
        }

        if (Interlocked.Increment(ref _held) > _options.MaxConnections)
        {
            Interlocked.Decrement(ref _held);
            WarnFull();
            return (null, Found.Full);
        }

        var opened = new HttpConnection(this, new IpyRpcConnection("http", Address(context), RequestUser.Authenticated(context)));
        _connections[opened.Id] = opened;
        return (opened, message.Kind == MessageKind.Hello ? Found.Opened : Found.ForThisRequest);
    }

    /// <summary>Says that connections are refused for want of room: once a minute at most, with how many, so a flood of them is one line a minute in the log.</summary>
    private void WarnFull()
    {
        Interlocked.Increment(ref _refusedWhileFull);
        long now = Environment.TickCount64, last = Interlocked.Read(ref _fullWarnedAt);
        if ((last != long.MinValue && now - last < 60_000) || Interlocked.CompareExchange(ref _fullWarnedAt, now, last) != last) return;
        _server.Log.LogWarning("The binary endpoint holds {Max} connections over HTTP requests, as many as IpyRpcHttpOptions.MaxConnections allows; it refused {Refused} requests that would have opened another since it last said so.",
            _options.MaxConnections, Interlocked.Exchange(ref _refusedWhileFull, 0));
    }

    /// <summary>
    /// A connection's session has ended, however it ended: the connection is no longer held. One the server closed on
    /// purpose is remembered (the last <see cref="RememberedCloses"/> of them) with the close its client is to hear.
    /// </summary>
    private void Ended(HttpConnection connection)
    {
        Forget(connection);
        if (connection.Connection.Disconnect is { Reason: DisconnectReason.ClosedByServer or DisconnectReason.Unauthorized } info)
        {
            _closedByServer[connection.Id] = info.ToMessage();
            _closedInOrder.Enqueue(connection.Id);
            while (_closedInOrder.Count > RememberedCloses && _closedInOrder.TryDequeue(out string? oldest)) _closedByServer.TryRemove(oldest, out _);
        }
    }

    /// <summary>Takes <paramref name="connection"/> out of those held: true for the one caller that does, which then ends its session.</summary>
    private bool Forget(HttpConnection connection)
    {
        if (!_connections.TryRemove(KeyValuePair.Create(connection.Id, connection))) return false;
        Interlocked.Decrement(ref _held);
        return true;
    }

    /// <summary>
    /// Whether this request may speak for <paramref name="known"/>: a request HTTP authentication vouches for
    /// authenticates a connection that is not yet, and must be its principal once it is; an anonymous request adds nothing.
    /// </summary>
    private static bool Admit(HttpContext context, HttpConnection known)
    {
        if (RequestUser.Authenticated(context) is { } user)
        {
            if (!known.Connection.IsAuthenticated) known.Connection.Authenticate(user);
            else if (known.Connection.Principal.Identity?.Name != user.Identity!.Name) return false;
        }

        known.Touch();
        return true;
    }

    private static string? Address(HttpContext context) => context.Connection.RemoteIpAddress is { } ip
        ? (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString()) + ":" + context.Connection.RemotePort
        : null;

    /// <summary>
    /// Closes connections that have been idle (no request in flight) for longer than the timeout: their sessions end
    /// as <see cref="DisconnectReason.IdleTimeout"/>.
    /// </summary>
    private void Sweep()
    {
        if (_options.ConnectionIdleTimeout == Timeout.InfiniteTimeSpan) return;
        DateTime cutoff = DateTime.UtcNow - _options.ConnectionIdleTimeout;
        foreach (HttpConnection c in _connections.Values)
        {
            if (c.Routes.IsEmpty && c.LastActivity < cutoff && Forget(c))
            {
                var info = new DisconnectInfo(DisconnectReason.IdleTimeout, $"No request for {_options.ConnectionIdleTimeout.TotalSeconds:0.###} s.");
                _ = c.Session.CloseAsync(info, notifyPeer: false).AsTask();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stopping.Cancel();
        await _sweeper.DisposeAsync().ConfigureAwait(false);
        foreach (HttpConnection c in _connections.Values)
        {
            if (Forget(c)) await c.Session.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static Task WriteErrorAsync(HttpResponse response, int status, ulong id, string code, string message) => WriteAsync(response, status, new IpyRpcMessage
    {
        Kind = MessageKind.Error,
        Id = id,
        Parts = [new RemoteError { Code = code, Message = message }.Encode(Serialization.MessagePack)],
    });

    private static async Task WriteAsync(HttpResponse response, int status, IpyRpcMessage message)
    {
        response.StatusCode = status;
        response.ContentType = ContentType;
        byte[] bytes = MessageCodec.EncodeFramed(message);
        response.ContentLength = bytes.Length;
        await response.Body.WriteAsync(bytes).ConfigureAwait(false);
    }

    /// <summary>One client's logical connection: its session, and where each of its requests waits for replies.</summary>
    private sealed class HttpConnection
    {
        private long _lastActivity = DateTime.UtcNow.Ticks;

        public HttpConnection(BinaryEndpoint endpoint, IpyRpcConnection connection)
        {
            Connection = connection;
            Session = endpoint._server.CreateSession(SendAsync, connection, duplex: false);
            // However the session ends (the client's close, the idle sweep, the server closing it), the endpoint lets go.
            connection.Closed.Register(static s => { var (e, c) = ((BinaryEndpoint, HttpConnection))s!; e.Ended(c); }, (endpoint, this));
        }

        public string Id => Connection.Id;

        public IpyRpcConnection Connection { get; }

        public ServerSession Session { get; }

        public ConcurrentDictionary<ulong, Route> Routes { get; } = new();

        public DateTime LastActivity => new(Interlocked.Read(ref _lastActivity), DateTimeKind.Utc);

        public void Touch() => Interlocked.Exchange(ref _lastActivity, DateTime.UtcNow.Ticks);

        // Each reply goes to the response of the request it answers; one whose request is gone is dropped.
        private ValueTask SendAsync(IpyRpcMessage reply, CancellationToken cancellationToken)
            => Routes.TryGetValue(reply.Id, out Route? route) ? route.WriteAsync(reply) : default;
    }

    /// <summary>The response of one request: replies are written to it in order; the final one ends it.</summary>
    private sealed class Route(HttpResponse response, CancellationToken aborted)
    {
        private const int WriteChunkBytes = 1024 * 1024;

        private readonly SemaphoreSlim _gate = new(1, 1);

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async ValueTask WriteAsync(IpyRpcMessage reply)
        {
            await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                if (Done.Task.IsCompleted) return;
                bool final = reply.Kind is MessageKind.Result or MessageKind.Error or MessageKind.Hello or MessageKind.Pong;
                if (reply.PartBytes >= PooledParts.Threshold)
                {
                    await WriteLargeAsync(reply, final).ConfigureAwait(false);
                }
                else
                {
                    ReadOnlyMemory<byte> bytes = MessageCodec.EncodeFramed(reply, pooling: true, out PooledParts? pooled);
                    reply.Pooled?.Release(); // its parts are copied: the result's arrays can go back
                    if (final && !response.HasStarted)
                    {
                        response.ContentLength = bytes.Length; // a call that printed nothing: one plain response, no chunking
                    }

                    await response.Body.WriteAsync(bytes, aborted).ConfigureAwait(false);
                    pooled?.Release(); // written: the framing array can go back (not after a failure, when the response may still hold it)
                }

                if (final)
                {
                    // End the response with the last message, so the client's connection is free for its next call at once.
                    await response.CompleteAsync().ConfigureAwait(false);
                    Done.TrySetResult();
                }
                else
                {
                    await response.Body.FlushAsync(aborted).ConfigureAwait(false);
                }
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>
        /// Writes a large message from its own parts into the response's pipe, a megabyte at a time (the pipe
        /// copies them, and each flush waits for the connection to take them, so the pipe never holds the whole message),
        /// instead of copying it into one array of its size first.
        /// </summary>
        private async ValueTask WriteLargeAsync(IpyRpcMessage reply, bool final)
        {
            try
            {
                FramedPieces pieces = MessageCodec.FramePieces(reply);
                if (final && !response.HasStarted) response.ContentLength = pieces.Length;
                PipeWriter writer = response.BodyWriter;
                int unflushed = 0;
                for (int i = 0; i < pieces.Count; i++)
                {
                    for (ReadOnlyMemory<byte> piece = pieces[i]; !piece.IsEmpty;)
                    {
                        int n = Math.Min(piece.Length, WriteChunkBytes - unflushed);
                        writer.Write(piece.Span[..n]);
                        piece = piece[n..];
                        unflushed += n;
                        if (unflushed == WriteChunkBytes)
                        {
                            await writer.FlushAsync(aborted).ConfigureAwait(false);
                            unflushed = 0;
                        }
                    }
                }

                await writer.FlushAsync(aborted).ConfigureAwait(false);
            }
            finally
            {
                reply.Pooled?.Release(); // copied into the pipe, or never to be
            }
        }
    }
}
