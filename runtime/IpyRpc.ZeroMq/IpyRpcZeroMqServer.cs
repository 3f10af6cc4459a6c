using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq;

/// <summary>
/// Serves an <see cref="IpyRpcServer"/> on a ZeroMQ ROUTER socket (<c>tcp://</c> or <c>ipc://</c>).
/// Each DEALER peer gets a session of its own; protocol messages travel as frames (the header, then
/// each part). Malformed input gets an error reply where one is possible, and serving goes on.
/// A peer's session ends when it says goodbye, when its connection closes (its process died, its
/// network went: libzmq's monitor reports it, and TCP keepalive notices a host that is gone), or when the
/// server stops (it tells every peer first). A slow peer is never dropped for being slow: its messages wait in a queue of its own, so
/// it never holds up the others.
/// </summary>
public sealed class IpyRpcZeroMqServer : IAsyncDisposable
{
    private readonly IpyRpcServer _server;
    private readonly ConcurrentDictionary<string, ServerSession> _sessions = new();
    // Which peer each connection (file descriptor) carries, and which connections are open: the I/O thread
    // learns of both from libzmq's monitor, so a closed connection ends its peer's session.
    private readonly ConcurrentDictionary<int, string> _fdOwner = new();
    private readonly HashSet<int> _closedFds = [];
    private readonly SocketLoop _loop;
    private readonly TimeSpan _linger;
    private readonly ZeroMqCurve? _curve;
    private int _disposed;

    private IpyRpcZeroMqServer(IpyRpcServer server, string endpoint, ZeroMqOptions options)
    {
        if (options.Curve is { IsServer: false })
        {
            throw new ArgumentException("A server's CURVE configuration needs its secret key: use ZeroMqCurve.ForServer.", nameof(options));
        }

        server.EnsureMayListen(endpoint, transportAuthenticates: options.Curve?.AuthorizedClients is not null, "ZeroMQ CURVE keys with an allow-list (ZeroMqOptions.Curve = ZeroMqCurve.ForServer(...))");
        _server = server;
        _curve = options.Curve;
        _linger = options.Linger;
        _ipc = endpoint.StartsWith("ipc://", StringComparison.Ordinal) ? endpoint : null;
        string bound = "";
        long max = Math.Min(options.MaxMessageBytes, server.Options.MaxMessageBytes);
        _loop = new SocketLoop("IpyRpc.ZeroMq server " + endpoint, LibZmq.ROUTER, socket =>
        {
            (options with { MaxMessageBytes = max }).Apply(socket, server: true);
            options.Curve?.ApplyToServer(socket);
            SocketLoop.SetInt(socket, LibZmq.ROUTER_MANDATORY, 1); // replies to a vanished peer fail fast instead of queueing
            if (LibZmq.zmq_bind(socket, endpoint) < 0)
            {
                int errno = LibZmq.zmq_errno();
                throw new IOException($"ZeroMQ could not bind {endpoint}: {LibZmq.Error(errno)} (errno {errno}).");
            }

            bound = SocketLoop.ReadLastEndpoint(socket);
        }, Receive, OnSocketEvent, max, ProtocolVersion.MaxParts + 2, ZeroMqOptions.Ms(options.Linger),
            authenticate: options.Curve is { } curve ? curve.Admit : null,
            wantsPeer: identity => !_sessions.ContainsKey(KeyOf(identity)),
            failed: (e, what) => Microsoft.Extensions.Logging.LoggerExtensions.LogError(server.Log, e, "ZeroMQ server at {Endpoint} failed {What}", endpoint, what),
            lendThread: true); // a call handed to a waiting in-memory worker runs on the thread that received it

        Endpoint = bound;
        if (Uri.TryCreate(bound, UriKind.Absolute, out Uri? uri) && uri.Scheme == "tcp")
        {
            // Pointers to this server's values name this address.
            _advertised = new PointerEndpoint("zmq", server.Data.HostToAdvertise(uri.Host), uri.Port);
            server.Data.Advertise(_advertised);
        }
    }

    private readonly PointerEndpoint? _advertised;

    /// <summary>The socket's loop (for tests).</summary>
    internal SocketLoop Loop => _loop;

    private readonly string? _ipc;

    /// <summary>The bound endpoint, with the real port when <c>tcp://host:*</c> was asked for.</summary>
    public string Endpoint { get; }

    /// <summary>How many peers have sessions.</summary>
    public int Peers => _sessions.Count;

    /// <summary>Binds <paramref name="endpoint"/> (for example <c>tcp://127.0.0.1:*</c> or <c>ipc:///tmp/ipyrpc.sock</c>) and starts serving.</summary>
    /// <exception cref="ZeroMqNotFoundException">libzmq is not installed.</exception>
    /// <exception cref="IOException">The endpoint could not be bound.</exception>
    public static IpyRpcZeroMqServer Start(IpyRpcServer server, string endpoint, ZeroMqOptions? options = null)
        => new(server, endpoint, options ?? new ZeroMqOptions());

    // Runs on the I/O thread: decode, find the peer's session, hand the message over.
    private void Receive(List<ReadOnlyMemory<byte>> frames, PooledParts? pooled, ProtocolException? problem, PeerInfo? peer)
    {
        // Kept by the session for its replies: small frames arrive in arrays of their own size.
        byte[] identity = MemoryMarshal.TryGetArray(frames[0], out ArraySegment<byte> own) && own.Offset == 0 && own.Count == own.Array!.Length ? own.Array : frames[0].ToArray();
        if (problem is not null)
        {
            Reply(identity, frames.Count > 1 ? TryId(frames[1].Span) : 0, problem.Code, problem.Message);
            return;
        }

        if (frames.Count < 2)
        {
            Reply(identity, 0, ErrorCodes.BadMessage, "A message needs at least a header frame after the peer identity.");
            return;
        }

        IpyRpcMessage message;
        try
        {
            message = MessageCodec.DecodeHeader(frames[1].Span, frames.Count == 2 ? [] : frames.GetRange(2, frames.Count - 2), pooled);
        }
        catch (ProtocolException e)
        {
            Reply(identity, e.Id, e.Code, e.Message);
            return;
        }

        string key = KeyOf(identity);
        if (!_sessions.TryGetValue(key, out ServerSession? session))
        {
            if (peer?.Fd is int fd && _closedFds.Contains(fd))
            {
                return; // a straggler from a connection that has closed: no one is there to answer
            }

            if (Volatile.Read(ref _disposed) == 1 || _server.IsStopping)
            {
                // Stopping: no new connection starts (a client that heard the close says hello again at once, and would be
                // answered by a server about to go). It hears the close, saying none of what it sent was read, and tries again.
                pooled?.Release();
                Send(identity, (Stopping with { ReadUpTo = 0 }).ToMessage());
                return;
            }

            session = _server.CreateSession((reply, _) =>
            {
                Send(identity, reply);
                // Wait while libzmq's queue for this peer is full: the session's event buffer then fills instead.
                return _loop.WhenPeerAccepts(key) is { } full ? new ValueTask(full) : default;
            }, NewConnection(peer));
            _sessions[key] = session;
            if (peer?.Fd is int descriptor)
            {
                // Two live connections never share a descriptor: a peer that had this one is gone.
                if (_fdOwner.TryGetValue(descriptor, out string? previous) && previous != key) End(previous, ConnectionClosed);
                _fdOwner[descriptor] = key;
            }

            ServerSession made = session;
            _ = session.Ended.ContinueWith(_ =>
            {
                _sessions.TryRemove(new KeyValuePair<string, ServerSession>(key, made));
                foreach (KeyValuePair<int, string> owned in _fdOwner.Where(o => o.Value == key)) _fdOwner.TryRemove(owned);
                if (Volatile.Read(ref _disposed) == 0) _loop.ForgetPeer(key);
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        ValueTask handled = session.HandleAsync(message);
        if (!handled.IsCompletedSuccessfully)
        {
            _ = handled.AsTask();
        }
    }

    /// <summary>A peer's identity and the key its session is found by.</summary>
    private sealed record PeerKey(byte[] Identity, string Key);

    private PeerKey? _lastPeer;

    /// <summary>
    /// The session key of a peer identity. Consecutive messages mostly come from one peer (its calls arrive in bursts):
    /// the last peer's key is kept, so such a message costs a comparison of a few bytes instead of a new string.
    /// </summary>
    private string KeyOf(byte[] identity)
    {
        PeerKey? last = Volatile.Read(ref _lastPeer);
        if (last is not null && last.Identity.AsSpan().SequenceEqual(identity)) return last.Key;
        string key = Convert.ToBase64String(identity);
        Volatile.Write(ref _lastPeer, new PeerKey(identity, key));
        return key;
    }

    private static readonly DisconnectInfo ConnectionClosed = new(DisconnectReason.ConnectionLost,
        "The client's ZeroMQ connection closed without a goodbye (its process ended, or its host or network went: TCP keepalive probes went unanswered).");

    // Runs on the I/O thread: libzmq's monitor says a connection opened or closed.
    private void OnSocketEvent(int evt, int value)
    {
        if (evt == LibZmq.EVENT_ACCEPTED)
        {
            _closedFds.Remove(value);
        }
        else if (evt == LibZmq.EVENT_DISCONNECTED)
        {
            _closedFds.Add(value);
            if (_fdOwner.TryRemove(value, out string? key)) End(key, ConnectionClosed);
        }
    }

    private void End(string key, DisconnectInfo info)
    {
        if (_sessions.TryGetValue(key, out ServerSession? session))
        {
            // libzmq reports the disconnect before this loop hands over what the peer sent just before it (its
            // goodbye, with the reason): a moment's grace lets that arrive first, so the reason is the peer's own.
            _ = Task.Run(async () =>
            {
                await Task.Delay(DisconnectGrace).ConfigureAwait(false);
                await session.CloseAsync(info, notifyPeer: false).ConfigureAwait(false);
            });
        }
    }

    private static readonly TimeSpan DisconnectGrace = TimeSpan.FromMilliseconds(100);

    private static readonly DisconnectInfo Stopping = new(DisconnectReason.ServerStopping, "The server is stopping.");

    /// <summary>A new peer's connection: its address, and with CURVE the principal its key was admitted as.</summary>
    private IpyRpcConnection NewConnection(PeerInfo? peer)
    {
        System.Security.Claims.ClaimsPrincipal? principal = null;
        if (_curve is not null && peer?.UserId is { } user)
        {
            principal = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(
                [new System.Security.Claims.Claim(System.Security.Claims.ClaimTypes.Name, user)], "zeromq-curve"));
        }

        // Over ipc the peer is on this machine by construction (libzmq reports it as localhost:uid:gid:pid).
        string? address = _ipc ?? peer?.Address;
        return new IpyRpcConnection("zeromq", address, principal);
    }

    private static ulong TryId(ReadOnlySpan<byte> header)
    {
        try
        {
            return MessageCodec.DecodeHeader(header, []).Id;
        }
        catch (ProtocolException e)
        {
            return e.Id;
        }
    }

    private void Reply(byte[] identity, ulong id, string code, string message) => Send(identity, new IpyRpcMessage
    {
        Kind = MessageKind.Error,
        Id = id,
        Parts = [new RemoteError { Code = code, Message = message }.Encode(Serialization.MessagePack)],
    });

    private void Send(byte[] identity, IpyRpcMessage message)
    {
        var frames = new ReadOnlyMemory<byte>[2 + message.Parts.Count];
        frames[0] = identity;
        frames[1] = MessageCodec.EncodeHeader(message);
        for (int i = 0; i < message.Parts.Count; i++) frames[2 + i] = message.Parts[i];
        try
        {
            _loop.Send(frames, message.Pooled);
        }
        catch (ObjectDisposedException)
        {
            // Shutting down: the peer learns from the closed connection.
        }
    }

    /// <summary>Stops serving: every peer is told the server is stopping, sessions are closed (their calls cancelled), queued replies get the linger time, and the socket, context and thread are released.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (_advertised is not null) _server.Data.Withdraw(_advertised);
        await Task.WhenAll(_sessions.Values.Select(s => s.CloseAsync(Stopping, notifyPeer: true).AsTask())).ConfigureAwait(false);

        // Cancelled calls get the linger time to tell their callers so before the socket closes.
        DateTime deadline = DateTime.UtcNow + _linger;
        while (_sessions.Values.Any(s => s.InFlight > 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5).ConfigureAwait(false);
        }

        _sessions.Clear();
        _loop.Dispose();
    }
}
