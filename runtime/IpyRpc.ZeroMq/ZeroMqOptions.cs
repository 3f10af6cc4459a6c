using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq;

/// <summary>Options of the ZeroMQ transport, for servers and clients alike.</summary>
public sealed record ZeroMqOptions
{
    /// <summary>
    /// Clients: how often ZMTP heartbeats (PING) are sent on an idle connection. Servers send none:
    /// a client that is alive but slow to read must not be dropped (see <see cref="TcpKeepAliveIdle"/>).
    /// </summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Clients: how long without any traffic after a PING before the server is taken for dead and the connection closed.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a TCP connection may be idle before the kernel probes the peer (TCP keepalive; both
    /// sides). The kernel of a live peer answers even when its process is stopped or too busy to
    /// read, so probes tell a host or network that is gone (after <see cref="TcpKeepAliveIdle"/> plus
    /// <see cref="TcpKeepAliveCount"/> × <see cref="TcpKeepAliveInterval"/>, 20 s by default) from a
    /// reader that is merely slow, whose messages wait for it. A peer process that ends closes its
    /// connection at once.
    /// </summary>
    public TimeSpan TcpKeepAliveIdle { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The time between TCP keepalive probes (see <see cref="TcpKeepAliveIdle"/>).</summary>
    public TimeSpan TcpKeepAliveInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>How many unanswered TCP keepalive probes end the connection (see <see cref="TcpKeepAliveIdle"/>).</summary>
    public int TcpKeepAliveCount { get; init; } = 5;

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

    internal void Apply(Native.ZmqSocketHandle socket, bool server = false)
    {
        // A server never pings: an unanswered PING would drop a client that is alive but not reading
        // (its messages queue for it instead, up to the high-water mark). TCP keepalive finds dead peers.
        Native.SocketLoop.SetInt(socket, Native.LibZmq.HEARTBEAT_IVL, server ? 0 : Ms(HeartbeatInterval));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.HEARTBEAT_TIMEOUT, Ms(HeartbeatTimeout));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.HEARTBEAT_TTL, server ? 0 : Ms(HeartbeatTimeout));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.TCP_KEEPALIVE, 1);
        Native.SocketLoop.SetInt(socket, Native.LibZmq.TCP_KEEPALIVE_IDLE, Math.Max(1, (int)TcpKeepAliveIdle.TotalSeconds));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.TCP_KEEPALIVE_INTVL, Math.Max(1, (int)TcpKeepAliveInterval.TotalSeconds));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.TCP_KEEPALIVE_CNT, Math.Max(1, TcpKeepAliveCount));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.SNDHWM, HighWaterMark);
        Native.SocketLoop.SetInt(socket, Native.LibZmq.RCVHWM, HighWaterMark);
        Native.SocketLoop.SetLong(socket, Native.LibZmq.MAXMSGSIZE, MaxMessageBytes + ProtocolVersion.MaxHeaderBytes);
        Native.SocketLoop.SetInt(socket, Native.LibZmq.RECONNECT_IVL, Ms(ReconnectInterval));
        Native.SocketLoop.SetInt(socket, Native.LibZmq.RECONNECT_IVL_MAX, Ms(ReconnectIntervalMax));
    }

    internal static int Ms(TimeSpan t) => (int)Math.Clamp(t.TotalMilliseconds, 0, int.MaxValue);
}
