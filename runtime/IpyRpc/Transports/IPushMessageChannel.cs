using IpyRpc.Protocol;

namespace IpyRpc.Transports;

/// <summary>
/// A channel that hands each received message straight to a callback on the thread that received
/// it, instead of queueing it for <see cref="IMessageChannel.ReceiveAsync"/>: one thread hop less
/// per reply. Clients use it when a channel offers it.
/// </summary>
public interface IPushMessageChannel : IMessageChannel
{
    /// <summary>
    /// From now on, delivers messages to <paramref name="onMessage"/> (in order, never concurrently)
    /// and reports the end of the connection to <paramref name="onClosed"/>. Call once, before sending.
    /// </summary>
    void StartReceiving(Action<IpyRpcMessage> onMessage, Action<Exception?> onClosed);
}
