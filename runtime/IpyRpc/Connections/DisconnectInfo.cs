namespace IpyRpc;

/// <summary>Why a connection ended.</summary>
public enum DisconnectReason
{
    /// <summary>The other side closed it on purpose (a client disposed, a peer said goodbye).</summary>
    Closed,
    /// <summary>The server closed this connection (<see cref="IpyRpcConnection.CloseAsync"/>).</summary>
    ClosedByServer,
    /// <summary>The server is shutting down.</summary>
    ServerStopping,
    /// <summary>The transport broke without a goodbye: the socket closed or reset, the process on the other side died.</summary>
    ConnectionLost,
    /// <summary>The other side stopped answering heartbeats within the timeout.</summary>
    HeartbeatLost,
    /// <summary>A connection of separate HTTP requests saw none for longer than its idle timeout.</summary>
    IdleTimeout,
    /// <summary>The connection's credentials were refused or revoked.</summary>
    Unauthorized,
    /// <summary>This side disposed the connection.</summary>
    Disposed,
}

/// <summary>How a connection ended: the <see cref="Reason"/> and a sentence that says it.</summary>
/// <param name="Reason">Why.</param>
/// <param name="Message">What happened, in words.</param>
/// <param name="Exception">The transport's failure, where there was one.</param>
public sealed record DisconnectInfo(DisconnectReason Reason, string Message, Exception? Exception = null)
{
    /// <summary>
    /// In a <c>close</c>: the highest request id the closing side had read on this connection. A request of the other
    /// side with a higher id was never read and never runs: its caller learns it was not delivered
    /// (<see cref="IpyRpcConnectionException.NotDelivered"/>) and a reconnecting client makes it again.
    /// <see langword="null"/> when not said.
    /// </summary>
    public ulong? ReadUpTo { get; init; }

    /// <summary>The wire name of <see cref="Reason"/> in a <c>close</c> message: <c>closed</c>, <c>closed_by_server</c>, <c>server_stopping</c>, <c>unauthorized</c>…</summary>
    public static string WireName(DisconnectReason reason) => reason switch
    {
        DisconnectReason.Closed => "closed",
        DisconnectReason.ClosedByServer => "closed_by_server",
        DisconnectReason.ServerStopping => "server_stopping",
        DisconnectReason.ConnectionLost => "connection_lost",
        DisconnectReason.HeartbeatLost => "heartbeat_lost",
        DisconnectReason.IdleTimeout => "idle_timeout",
        DisconnectReason.Unauthorized => "unauthorized",
        _ => "disposed",
    };

    /// <summary>The reason named <paramref name="name"/> on the wire; <see cref="DisconnectReason.Closed"/> for names this version does not know.</summary>
    public static DisconnectReason Parse(string? name) => name switch
    {
        "closed_by_server" => DisconnectReason.ClosedByServer,
        "server_stopping" => DisconnectReason.ServerStopping,
        "connection_lost" => DisconnectReason.ConnectionLost,
        "heartbeat_lost" => DisconnectReason.HeartbeatLost,
        "idle_timeout" => DisconnectReason.IdleTimeout,
        "unauthorized" => DisconnectReason.Unauthorized,
        _ => DisconnectReason.Closed,
    };

    /// <summary>The <c>close</c> message that tells the other side of this (for a transport that tells it itself, as HTTP requests do).</summary>
    public Protocol.IpyRpcMessage ToMessage() => new()
    {
        Kind = Protocol.MessageKind.Close,
        Parts = [Jobs.JobCodec.Encode(ReadUpTo is { } read
            ? new Dictionary<string, object?> { ["reason"] = WireName(Reason), ["message"] = Message, ["read"] = read }
            : new Dictionary<string, object?> { ["reason"] = WireName(Reason), ["message"] = Message }, Serialization.MessagePack)],
    };

    /// <summary>Reads a <c>close</c> message (a malformed one still closes: as <see cref="DisconnectReason.Closed"/>).</summary>
    internal static DisconnectInfo FromMessage(Protocol.IpyRpcMessage message, string who)
    {
        Dictionary<string, object?>? fields = null;
        try
        {
            fields = Jobs.JobCodec.Decode(message.Body.Span, message.Serialization) as Dictionary<string, object?>;
        }
        catch (Exception e) when (e is Formatting.IpyRpcSerializationException or System.Text.Json.JsonException or MessagePack.MessagePackSerializationException)
        {
        }

        DisconnectReason reason = Parse(fields?.GetValueOrDefault("reason") as string);
        string text = fields?.GetValueOrDefault("message") as string is { Length: > 0 } m ? m : $"{who} closed the connection.";
        ulong? read = fields?.GetValueOrDefault("read") switch
        {
            long l and >= 0 => (ulong)l,
            ulong u => u,
            int i and >= 0 => (ulong)i,
            _ => null,
        };
        return new DisconnectInfo(reason, text) { ReadUpTo = read };
    }

    /// <summary>The exception calls still waiting get when the connection ends like this.</summary>
    internal IpyRpcConnectionException ToException(string peer) => Reason == DisconnectReason.Unauthorized
        ? new IpyRpcConnectionException($"The connection to {peer} was closed: {Message}", Exception) { Reason = Reason }
        : new IpyRpcConnectionException($"The connection to {peer} ended ({WireName(Reason).Replace('_', ' ')}): {Message}", Exception) { Reason = Reason };
}
