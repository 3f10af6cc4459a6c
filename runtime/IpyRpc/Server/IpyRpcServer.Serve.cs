using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc;

public sealed partial class IpyRpcServer
{
    /// <summary>Opens a session whose replies go through <paramref name="send"/>. Transports call this once per peer.</summary>
    public ServerSession CreateSession(Func<IpyRpcMessage, CancellationToken, ValueTask> send)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ServerSession(this, send);
    }

    /// <summary>
    /// Serves one connection until the peer closes it or <paramref name="cancellationToken"/> fires.
    /// Undecodable messages get an error reply and the connection goes on.
    /// </summary>
    public async Task ServeAsync(IMessageChannel channel, CancellationToken cancellationToken = default)
    {
        await using ServerSession session = CreateSession(channel.SendAsync);
        while (!cancellationToken.IsCancellationRequested)
        {
            IpyRpcMessage? message;
            try
            {
                message = await channel.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ProtocolException e)
            {
                await session.ReplyProtocolErrorAsync(e).ConfigureAwait(false);
                continue;
            }
            catch (OperationCanceledException)
            {
                break;
            }

            if (message is null)
            {
                break;
            }

            await session.HandleAsync(message).ConfigureAwait(false);
        }
    }
}
