using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq;

/// <summary>Options of the ZeroMQ transport, for servers and clients alike.</summary>
public sealed record ZeroMqOptions
{
    /// <summary>How often ZMTP heartbeats (PING) are sent on an idle connection.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long without any traffic after a PING before the peer is taken for dead and the connection closed.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long unsent messages may hold up closing.</summary>
    public TimeSpan Linger { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How soon a client retries a lost connection (doubling up to <see cref="ReconnectIntervalMax"/>).</summary>
    public TimeSpan ReconnectInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest wait between reconnection attempts.</summary>
    public TimeSpan ReconnectIntervalMax { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Messages queued per peer before sends wait (ZMQ_SNDHWM and ZMQ_RCVHWM).</summary>
    public int HighWaterMark { get; init; } = 100_000;

    /// <summary>The largest message accepted (ZMQ_MAXMSGSIZE per frame, and all frames together).</summary>
    public long MaxMessageBytes { get; init; } = ProtocolVersion.DefaultMaxMessageBytes;

    /// <summary>CURVE security: encryption, and authentication by key (<see cref="ZeroMqCurve.ForServer"/>, <see cref="ZeroMqCurve.ForClient"/>).</summary>
    public ZeroMqCurve? Curve { get; init; }

    internal void Apply(Native.ZmqSocketHandle socket)
    {
        Native.SocketLoop.SetInt(socket, Native.LibZmq.HEARTBEAT_IVL, Ms(HeartbeatInterval));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.HEARTBEAT_TIMEOUT, Ms(HeartbeatTimeout));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.HEARTBEAT_TTL, Ms(HeartbeatTimeout));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.SNDHWM, HighWaterMark);
        Native.SocketLoop.SetInt(socket, Native.LibZmq.RCVHWM, HighWaterMark);
        Native.SocketLoop.SetLong(socket, Native.LibZmq.MAXMSGSIZE, MaxMessageBytes + ProtocolVersion.MaxHeaderBytes);
        Native.SocketLoop.SetInt(socket, Native.LibZmq.RECONNECT_IVL, Ms(ReconnectInterval));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.RECONNECT_IVL_MAX, Ms(ReconnectIntervalMax));
    }

    internal static int Ms(TimeSpan t) => (int)Math.Clamp(t.TotalMilliseconds, 0, int.MaxValue);
}
