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

    /// <summary>
    /// Functions this client exports for the server to call back, as <see cref="IpyRpcServer.Register(Type)"/>
    /// takes them: types with <c>[IpyRpcExport]</c> methods (static, or instance methods on a new instance),
    /// service instances, or <see cref="IpyRpcFunction"/>s. More can be added later with <see cref="IpyRpcClient.Register(object)"/>.
    /// </summary>
    public IReadOnlyList<object> Exports { get; init; } = [];

    /// <summary>Glob config for the exported functions (timeouts, output, authorizers), as <see cref="IpyRpcServer.Config"/> takes it.</summary>
    public GlobConfig? ExportsConfig { get; init; }

    /// <summary>How many calls from the server may run in this client at once.</summary>
    public int ExportConcurrency { get; init; } = 16;

    /// <summary>
    /// How long the connection may stay quiet before the client pings the server to make sure it is
    /// still there. <see langword="null"/>: never (then a server that vanishes without closing the
    /// connection is noticed only by the transport). Not used in process.
    /// </summary>
    public TimeSpan? HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long without hearing anything from the server before the connection counts as lost (<see cref="DisconnectReason.HeartbeatLost"/>).</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Reconnects after the connection is lost, where the transport can dial again (ZeroMQ, HTTP with
    /// WebSockets or requests; over requests, once the server says it no longer holds the connection): hello,
    /// authentication, the function list and event subscriptions are all done again, and
    /// <see cref="IpyRpcClient.Reconnected"/> is raised. Calls in flight when the connection was lost
    /// fail (a job submitted with <c>SubmitAsync</c> can be attached again); calls made while it is down wait
    /// for it and are sent once it is back (<see cref="ReconnectOptions.WaitForReconnect"/>), and so are calls
    /// that certainly did not reach the server. On by default (retrying until disposed); <see langword="null"/> turns it off.
    /// The client does not reconnect after the server closed the connection on purpose or refused its credentials.
    /// </summary>
    public ReconnectOptions? Reconnect { get; init; } = new();

    /// <summary>
    /// How many events each subscription holds for a handler that has not taken them yet. When it is
    /// full the oldest is dropped (and counted in <see cref="IpyRpcSubscription.Dropped"/>), so a slow
    /// handler never holds up the connection.
    /// </summary>
    public int EventBufferSize { get; init; } = 1024;
}

/// <summary>How a client reconnects after losing its connection.</summary>
public sealed record ReconnectOptions
{
    /// <summary>The wait before the first attempt; it doubles after each failure, up to <see cref="MaxDelay"/>.</summary>
    public TimeSpan FirstDelay { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest wait between attempts.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many attempts before giving up (the client then stays closed); <see langword="null"/>: keep trying until disposed.</summary>
    public int? MaxAttempts { get; init; }

    /// <summary>
    /// How long a call made while the client is reconnecting waits for the connection to come back before it fails with
    /// <see cref="IpyRpcConnectionException"/> (<see cref="IpyRpcConnectionException.NotDelivered"/>: it was not sent).
    /// Counted from when the call was made, and never past the call's own timeout, which the wait uses up. A waiting
    /// call makes the client try at least once a second. The same holds for a call that certainly did not reach the
    /// server (the connection was lost just before it was sent, the server refused it unread because it no longer held
    /// the connection, or over HTTP requests the server could not be dialled): it is made again, once the connection is
    /// up, within this time. Calls that may have reached the server are never made again. Zero: such calls fail at once;
    /// <see cref="Timeout.InfiniteTimeSpan"/>: they wait as long as the client keeps trying (and their own timeouts allow).
    /// </summary>
    public TimeSpan WaitForReconnect { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>One attempt to reconnect, as <see cref="IpyRpcClient.Reconnecting"/> reports it.</summary>
/// <param name="Attempt">1 for the first attempt.</param>
/// <param name="LastError">Why the previous attempt failed (<see langword="null"/> before the first).</param>
public sealed record ReconnectAttempt(int Attempt, Exception? LastError);

/// <summary>Options of one call.</summary>
public sealed record CallOptions
{
    /// <summary>
    /// The call's deadline; the server is told too, so it stops the work. Unset: the client's
    /// <see cref="IpyRpcClientOptions.DefaultTimeout"/>; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: none,
    /// whatever the default. Zero or negative is refused (<see cref="ArgumentOutOfRangeException"/>).
    /// </summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Where this call's remote output goes, instead of the client's handler.</summary>
    public Action<OutputStream, string>? Output { get; init; }

    /// <summary>The serialization of this call's arguments, instead of the client's.</summary>
    public Serialization? Serialization { get; init; }

    /// <summary>
    /// For a streaming call: how many items the callee may send before this caller has taken them
    /// (flow control). Default <see cref="IpyRpcPeer.DefaultStreamWindow"/>.
    /// </summary>
    public int? StreamWindow { get; init; }

    /// <summary>
    /// Whether the result stays with the process that computes it and a pointer comes back
    /// (<see langword="true"/>), or the value comes back even where the function's config says
    /// pointer (<see langword="false"/>). Unset: as the server configures the function. A typed call
    /// that gets a pointer where it wants a value fetches the value from the holder.
    /// </summary>
    public bool? ReturnPointer { get; init; }

    /// <summary>The options with <see cref="ReturnPointer"/> on (<see cref="IpyRpcPeer.AsPointerAsync{T}(Func{Task{T}})"/> uses it).</summary>
    public static CallOptions ForPointer(CallOptions? options) => (options ?? new CallOptions()) with { ReturnPointer = true };

    /// <summary>
    /// How long the holder keeps a pointer's value: positive, or <see cref="Timeout.InfiniteTimeSpan"/> for until released
    /// or evicted. Unset: as configured. A call given zero or a negative time fails with an <see cref="ArgumentOutOfRangeException"/>
    /// before anything is sent.
    /// </summary>
    public TimeSpan? PointerTimeToLive { get; init; }
}

/// <summary>A generated typed proxy: a class with one method per remote function.</summary>
/// <typeparam name="TSelf">The proxy type itself.</typeparam>
public interface IIpyRpcProxy<TSelf> where TSelf : IIpyRpcProxy<TSelf>
{
    /// <summary>Creates the proxy over <paramref name="peer"/>: a client (calls its server) or a server's connection (calls that client back).</summary>
    static abstract TSelf Create(IpyRpcPeer peer);
}
