using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc;

public sealed partial class IpyRpcServer
{
    /// <summary>
    /// Opens a session for <paramref name="connection"/> whose messages to the peer go through <paramref name="send"/>.
    /// Transports call this once per logical connection (one per peer; over HTTP, one per client across its requests).
    /// With <paramref name="duplex"/> (a transport that keeps one connection open both ways) the server can
    /// also call the peer through <paramref name="connection"/>; without it, such calls fail with an explanation.
    /// </summary>
    public ServerSession CreateSession(Func<IpyRpcMessage, CancellationToken, ValueTask> send, IpyRpcConnection connection, bool duplex = true)
        => CreateSession(send, connection, duplex, null);

    /// <summary>A session whose connection calls the peer back through <paramref name="callsBack"/> (a client's exports: calls go over the client's own link).</summary>
    internal ServerSession CreateSession(Func<IpyRpcMessage, CancellationToken, ValueTask> send, IpyRpcConnection connection, bool duplex, PeerLink? callsBack)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Opened(connection);
        return new ServerSession(this, send, connection, duplex, callsBack);
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
        ServerSession session = CreateSession(channel.SendAsync, connection, channel.IsDuplex);
        // Ends the loop when the session ends from inside (the peer said goodbye, the server closed the connection).
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _ = session.Ended.ContinueWith(static (_, s) => ((CancellationTokenSource)s!).Cancel(), ended, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        DisconnectInfo info = new(DisconnectReason.ConnectionLost, "The connection ended without a goodbye.");
        ReplyHandoff? held = null;
        var starting = new System.Runtime.CompilerServices.StrongBox<int>(); // calls read past while they start
        try
        {
            while (true)
            {
                IpyRpcMessage? message;
                try
                {
                    // A job the last message started on a waiting worker runs on this thread once the next receive waits.
                    LendingReceive next = LendingReceive.Next(channel, held, ended.Token);
                    held = null;
                    message = await next;
                }
                catch (ProtocolException e)
                {
                    await session.ReplyProtocolErrorAsync(e).ConfigureAwait(false);
                    continue;
                }
                catch (OperationCanceledException) when (ended.IsCancellationRequested)
                {
                    if (cancellationToken.IsCancellationRequested) info = new DisconnectInfo(DisconnectReason.ServerStopping, "The server stopped serving this connection.");
                    break;
                }
                catch (Exception e) when (e is IOException or IpyRpcConnectionException or System.Net.WebSockets.WebSocketException)
                {
                    info = new DisconnectInfo(DisconnectReason.ConnectionLost, "The connection failed: " + e.Message, e);
                    break;
                }

                if (message is null)
                {
                    break;
                }

                ValueTask handled = session.HandleHolding(message, out ReplyHandoff handoff);
                if (handled.IsCompletedSuccessfully)
                {
                    handled.GetAwaiter().GetResult();
                    held = handoff; // run by the next receive, lent this thread if it has to wait
                }
                else if (message.Kind is MessageKind.Call or MessageKind.Submit && Volatile.Read(ref starting.Value) < MaxCallsInFlightPerConnection)
                {
                    // A call whose start waits (an authorizer that looks something up, a durable queue's round trip): the
                    // connection's next messages are read meanwhile, as over ZeroMQ. It answers for itself and never
                    // throws. At most as many as the connection's share of calls are read past at once (a refusal
                    // waiting to be sent to a peer that does not read holds no share): past that, reading waits.
                    handoff.RunQueued();
                    Interlocked.Increment(ref starting.Value);
                    _ = ReadPastAsync(handled, starting);
                }
                else
                {
                    handoff.RunQueued();
                    await handled.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            await session.CloseAsync(info, notifyPeer: info.Reason == DisconnectReason.ServerStopping).ConfigureAwait(false);
        }
    }

    private static async Task ReadPastAsync(ValueTask handled, System.Runtime.CompilerServices.StrongBox<int> starting)
    {
        try
        {
            await handled.ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref starting.Value);
        }
    }
}
