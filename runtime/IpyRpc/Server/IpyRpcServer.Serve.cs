using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc;

public sealed partial class IpyRpcServer
{
    /// <summary>
    /// Opens a session for <paramref name="connection"/> whose replies go through <paramref name="send"/>.
    /// Transports call this once per logical connection (one per peer; over HTTP, one per client across its requests).
    /// </summary>
    public ServerSession CreateSession(Func<IpyRpcMessage, CancellationToken, ValueTask> send, IpyRpcConnection connection)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Opened(connection);
        return new ServerSession(this, send, connection);
    }

    /// <summary>
    /// Serves one connection until the peer closes it or <paramref name="cancellationToken"/> fires.
    /// Undecodable messages get an error reply and the connection goes on.
    /// </summary>
    public async Task ServeAsync(IMessageChannel channel, CancellationToken cancellationToken = default)
        => await ServeAsync(channel, new IpyRpcConnection("in-process", null), cancellationToken).ConfigureAwait(false);

    /// <summary>Serves one connection, described by <paramref name="connection"/>, until the peer closes it or <paramref name="cancellationToken"/> fires.</summary>
    public async Task ServeAsync(IMessageChannel channel, IpyRpcConnection connection, CancellationToken cancellationToken = default)
    {
        await using ServerSession session = CreateSession(channel.SendAsync, connection);
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
