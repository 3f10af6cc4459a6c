using IpyRpc.Protocol;

namespace IpyRpc.Transports;

/// <summary>
/// One end of a connection that carries whole messages. The in-process transport implements it
/// over bytes; stream and socket transports implement it over their framing. Sends may come from
/// many threads at once; receives come from one reader.
/// </summary>
public interface IMessageChannel : IAsyncDisposable
{
    /// <summary>Sends a message.</summary>
    ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Receives the next message, or <see langword="null"/> when the peer closed the connection.
    /// A message that cannot be decoded throws <see cref="ProtocolException"/>; the channel stays usable.
    /// </summary>
    ValueTask<IpyRpcMessage?> ReceiveAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Whether the channel is one connection that carries messages both ways at any time (in-process,
    /// ZeroMQ, WebSockets), so either side can call the other and the server can push events. False
    /// for carriers of separate requests (HTTP POST), where only the client speaks first.
    /// </summary>
    bool IsDuplex => true;

    /// <summary>Whether the client should send heartbeats on it (a network connection that can die silently).</summary>
    bool NeedsHeartbeat => true;
}
