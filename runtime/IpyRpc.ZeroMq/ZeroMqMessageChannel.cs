using System.Collections.Concurrent;
using IpyRpc.Protocol;
using IpyRpc.Transports;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq;

/// <summary>
/// The client side of the ZeroMQ transport: a DEALER socket on an I/O thread of its own. Any
/// number of calls multiplex over it, matched by id. ZeroMQ reconnects by itself when the server
/// comes back; a call in flight when the connection drops (the server closed, or heartbeats timed
/// out) fails at once with <see cref="ErrorCodes.ConnectionLost"/> rather than waiting forever.
/// </summary>
public sealed class ZeroMqMessageChannel : PushMessageChannel
{
    // The requests made before the first handshake, failed by this channel when the handshake fails or the connection
    // drops before it: after the handshake, a dropped connection ends the whole link, which fails every call in flight.
    private readonly ConcurrentDictionary<ulong, byte> _inFlight = new();
    private int _tracked; // entries in _inFlight: a reply looks there only while there are some
    private readonly SocketLoop _loop;
    private readonly ZeroMqCurve? _curve;
    private volatile bool _handshook;
    private volatile string? _refused; // the last CURVE handshake failure, until a handshake succeeds
    private int _disposed;

    /// <summary>Connects a DEALER socket to <paramref name="endpoint"/>. The connection itself is made in the background.</summary>
    public ZeroMqMessageChannel(string endpoint, ZeroMqOptions? options = null)
    {
        options ??= new ZeroMqOptions();
        Endpoint = endpoint;
        _curve = options.Curve;
        _loop = new SocketLoop("IpyRpc.ZeroMq client " + endpoint, LibZmq.DEALER, socket =>
        {
            options.Apply(socket);
            options.Curve?.ApplyToClient(socket);
            if (LibZmq.zmq_connect(socket, endpoint) < 0)
            {
                int errno = LibZmq.zmq_errno();
                throw new IOException($"ZeroMQ could not connect to {endpoint}: {LibZmq.Error(errno)} (errno {errno}).");
            }
        }, Receive, OnEvent, options.MaxMessageBytes, ProtocolVersion.MaxParts + 1, ZeroMqOptions.Ms(options.Linger), lendThread: true);
    }

    /// <summary>The endpoint connected to.</summary>
    public string Endpoint { get; }

    /// <summary>The requests this channel would fail itself if the first handshake failed or the connection dropped before it.</summary>
    internal int TrackedRequests => Volatile.Read(ref _tracked);

    /// <summary>Whether the socket currently has a live connection.</summary>
    public bool IsConnected { get; private set; }

    /// <inheritdoc/>
    public override ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default)
    {
        if (message.Kind is MessageKind.Call or MessageKind.Hello or MessageKind.Describe or MessageKind.Ping
            or MessageKind.Submit or MessageKind.Attach or MessageKind.Status or MessageKind.List or MessageKind.Auth
            || (message.Kind == MessageKind.Cancel && message.JobId is not null))
        {
            bool tracked = !_handshook && _inFlight.TryAdd(message.Id, 0);
            if (tracked) Interlocked.Increment(ref _tracked);
            if (_refused is { } why)
            {
                // The handshake already failed (perhaps before this request was made): say so now rather than after libzmq's next retry.
                if (tracked) Fail(message.Id, ErrorCodes.Unauthorized, why); // once, whether here or by the failure's own sweep
                else DeliverError(message.Id, ErrorCodes.Unauthorized, why);
                return default;
            }
        }

        var frames = new ReadOnlyMemory<byte>[1 + message.Parts.Count];
        frames[0] = MessageCodec.EncodeHeader(message);
        for (int i = 0; i < message.Parts.Count; i++) frames[1 + i] = message.Parts[i];
        try
        {
            _loop.Send(frames, message.Pooled);
        }
        catch (ObjectDisposedException e)
        {
            throw new IpyRpcConnectionException("The ZeroMQ connection is closed.", e);
        }

        return default;
    }

    private void Receive(List<ReadOnlyMemory<byte>> frames, PooledParts? pooled, ProtocolException? problem, PeerInfo? peer)
    {
        IpyRpcMessage message;
        try
        {
            if (problem is not null) throw problem;
            message = MessageCodec.DecodeHeader(frames[0].Span, frames.Count == 1 ? [] : frames.GetRange(1, frames.Count - 1), pooled);
        }
        catch (ProtocolException e)
        {
            ulong id = e.Id;
            if (id == 0 && frames.Count > 0)
            {
                try { id = MessageCodec.DecodeHeader(frames[0].Span, []).Id; } catch (ProtocolException) { }
            }

            if (id != 0) Fail(id, e.Code, "The server's reply could not be read: " + e.Message);
            return;
        }

        if ((message.Kind is MessageKind.Result or MessageKind.Error or MessageKind.Hello or MessageKind.Pong) && Volatile.Read(ref _tracked) > 0)
        {
            Untrack(message.Id);
        }

        Deliver(message);
    }

    private void HandshakeFailed(int evt)
    {
        // A deferred disconnect stands down when the handshake succeeded meanwhile or libzmq said why.
        if (evt == LibZmq.EVENT_DISCONNECTED && (_handshook || _refused is not null)) return;

        // The CURVE handshake failed: say so at once, rather than letting the calls wait while libzmq retries.
        string why = evt == LibZmq.EVENT_HANDSHAKE_FAILED_AUTH
            ? $"The server at {Endpoint} refused this client's CURVE key: it is not on the server's list."
            : $"The CURVE handshake with {Endpoint} failed: check the server's public key (ZeroMqCurve.ServerPublicKey) and this client's key pair.";
        if (_curve is not null) _refused = why;
        foreach (ulong id in _inFlight.Keys)
        {
            Fail(id, _curve is null ? ErrorCodes.ConnectionLost : ErrorCodes.Unauthorized, why);
        }
    }

    private void OnEvent(int evt, int value)
    {
        if (evt == LibZmq.EVENT_HANDSHAKE_SUCCEEDED)
        {
            _handshook = true;
            IsConnected = true;
            _refused = null;
        }
        else if (evt == LibZmq.EVENT_DISCONNECTED && _curve is not null && !_handshook)
        {
            // Dropped during the CURVE handshake. libzmq may report why (a refused key) just after the
            // disconnect: give that a moment to arrive so the calls fail with the specific reason.
            _ = Task.Delay(150).ContinueWith(static (_, s) => ((ZeroMqMessageChannel)s!).HandshakeFailed(LibZmq.EVENT_DISCONNECTED), this, TaskScheduler.Default);
        }
        else if (evt is LibZmq.EVENT_HANDSHAKE_FAILED_AUTH or LibZmq.EVENT_HANDSHAKE_FAILED_PROTOCOL or LibZmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        {
            HandshakeFailed(evt);
        }
        else if (evt == LibZmq.EVENT_DISCONNECTED)
        {
            IsConnected = false;
            if (_handshook)
            {
                // The logical connection is over: the server forgot this peer's session with it. The client
                // ends its link (its calls fail, Disconnected says why) and, if told to, dials a new one.
                CompleteReceiving(new IOException($"the connection to {Endpoint} was lost (the server went away or stopped answering heartbeats); calls in flight may or may not have run"));
                return;
            }

            foreach (ulong id in _inFlight.Keys)
            {
                Fail(id, ErrorCodes.ConnectionLost, $"The connection to {Endpoint} was lost while the call was in flight (the server went away or stopped answering heartbeats); it may or may not have run.");
            }
        }
    }

    private void Fail(ulong id, string code, string message)
    {
        if (!Untrack(id)) return;
        DeliverError(id, code, message);
    }

    private bool Untrack(ulong id)
    {
        if (!_inFlight.TryRemove(id, out _)) return false;
        Interlocked.Decrement(ref _tracked);
        return true;
    }

    /// <summary>Closes the socket and releases its thread and context.</summary>
    public override ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return default;
        _loop.Dispose();
        CompleteReceiving();
        return default;
    }
}
