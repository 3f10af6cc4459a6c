using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>Options of an <see cref="IpyRpcClient"/>.</summary>
public sealed record IpyRpcClientOptions
{
    /// <summary>How calls encode their arguments. MessagePack by default.</summary>
    public Serialization Serialization { get; init; } = Serialization.MessagePack;

    /// <summary>
    /// Where the remote stdout/stderr of calls goes. Default: this process's console, as it arrives.
    /// Set it to route output elsewhere (a log, a notebook cell); a call can override it.
    /// </summary>
    public Action<OutputStream, string>? Output { get; init; }

    /// <summary>The deadline of calls that set none. Unset: calls wait as long as the server allows.</summary>
    public TimeSpan? DefaultTimeout { get; init; }

    /// <summary>How long connecting (hello and describe) may take.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>The largest message accepted from the server.</summary>
    public long MaxMessageBytes { get; init; } = ProtocolVersion.DefaultMaxMessageBytes;

    /// <summary>
    /// The shared secret the server was configured with (<see cref="IpyRpcServerOptions.SharedSecret"/>).
    /// At connect the client proves it knows it, and checks the server's proof that it does too; a
    /// mismatch either way fails the connect with <see cref="IpyRpcUnauthorizedException"/>.
    /// </summary>
    public string? SharedSecret { get; init; }

    /// <summary>The name this client goes by on a server with a shared secret (its principal's name there). Default: <c>ipyrpc-secret</c>.</summary>
    public string? ClientName { get; init; }
}

/// <summary>Options of one call.</summary>
public sealed record CallOptions
{
    /// <summary>The call's deadline; the server is told too, so it stops the work.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Where this call's remote output goes, instead of the client's handler.</summary>
    public Action<OutputStream, string>? Output { get; init; }

    /// <summary>The serialization of this call's arguments, instead of the client's.</summary>
    public Serialization? Serialization { get; init; }
}

/// <summary>A generated typed proxy: a class with one method per remote function.</summary>
/// <typeparam name="TSelf">The proxy type itself.</typeparam>
public interface IIpyRpcProxy<TSelf> where TSelf : IIpyRpcProxy<TSelf>
{
    /// <summary>Creates the proxy over <paramref name="client"/>.</summary>
    static abstract TSelf Create(IpyRpcClient client);
}
