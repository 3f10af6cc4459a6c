using System.Collections.Concurrent;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq;

/// <summary>
/// Serves an <see cref="IpyRpcServer"/> on a ZeroMQ ROUTER socket (<c>tcp://</c> or <c>ipc://</c>).
/// Each DEALER peer gets a session of its own; protocol messages travel as frames (the header, then
/// each part). Malformed input gets an error reply where one is possible, and serving goes on.
/// </summary>
public sealed class IpyRpcZeroMqServer : IAsyncDisposable
{
    private readonly IpyRpcServer _server;
    private readonly ConcurrentDictionary<string, ServerSession> _sessions = new();
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
            (options with { MaxMessageBytes = max }).Apply(socket);
            options.Curve?.ApplyToServer(socket);
            SocketLoop.SetInt(socket, LibZmq.ROUTER_MANDATORY, 1); // replies to a vanished peer fail fast instead of queueing
            if (LibZmq.zmq_bind(socket, endpoint) < 0)
            {
                int errno = LibZmq.zmq_errno();
                throw new IOException($"ZeroMQ could not bind {endpoint}: {LibZmq.Error(errno)} (errno {errno}).");
            }

            bound = SocketLoop.ReadLastEndpoint(socket);
        }, Receive, null, max, ProtocolVersion.MaxParts + 2, ZeroMqOptions.Ms(options.Linger),
            authenticate: options.Curve is { } curve ? curve.Admit : null,
            wantsPeer: identity => !_sessions.ContainsKey(Convert.ToBase64String(identity)));
        Endpoint = bound;
    }

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
    private void Receive(List<byte[]> frames, ProtocolException? problem, PeerInfo? peer)
    {
        byte[] identity = frames[0];
        if (problem is not null)
        {
            Reply(identity, frames.Count > 1 ? TryId(frames[1]) : 0, problem.Code, problem.Message);
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
            message = MessageCodec.DecodeHeader(frames[1], frames.Count == 2 ? [] : [.. frames.Skip(2).Select(f => (ReadOnlyMemory<byte>)f)]);
        }
        catch (ProtocolException e)
        {
            Reply(identity, e.Id, e.Code, e.Message);
            return;
        }

        string key = Convert.ToBase64String(identity);
        ServerSession session = _sessions.GetOrAdd(key, _ => _server.CreateSession((reply, _) =>
        {
            Send(identity, reply);
            return default;
        }, NewConnection(peer)));
        ValueTask handled = session.HandleAsync(message);
        if (!handled.IsCompletedSuccessfully)
        {
            _ = handled.AsTask();
        }
    }

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

    private static ulong TryId(byte[] header)
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
            _loop.Send(frames);
        }
        catch (ObjectDisposedException)
        {
            // Shutting down: the peer learns from the closed connection.
        }
    }

    /// <summary>Stops serving: sessions are closed (their calls cancelled), queued replies get the linger time, and the socket, context and thread are released.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        foreach (ServerSession session in _sessions.Values)
        {
            await session.DisposeAsync().ConfigureAwait(false);
        }

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
