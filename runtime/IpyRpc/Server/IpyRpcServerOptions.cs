using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>Options of an <see cref="IpyRpcServer"/>.</summary>
public sealed record IpyRpcServerOptions
{
    /// <summary>The queue calls run on. Default: an <see cref="InMemoryJobQueue"/>.</summary>
    public IJobQueue? Queue { get; init; }

    /// <summary>Further named queues that <see cref="FunctionOptions.Queue"/> can pick.</summary>
    public IReadOnlyList<IJobQueue> AdditionalQueues { get; init; } = [];

    /// <summary>
    /// How many calls this server runs at once on each queue (its own workers). 0 runs none: the
    /// jobs wait for <see cref="IpyRpcWorker"/>s in other processes, which needs durable queues.
    /// </summary>
    public int Concurrency { get; init; } = 64;

    /// <summary>How long a lease of this server's workers holds on a durable queue without renewal (see <see cref="JobWorkerOptions.LeaseDuration"/>).</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Names this server's workers in job listings. Default: host, process id and a random suffix.</summary>
    public string? WorkerId { get; init; }

    /// <summary>On dispose, how long running calls may go on before they are cancelled. Default: none, they are cancelled at once.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>
    /// Opens the services of one call: a provider and what disposes it (a dependency-injection scope).
    /// Exported types registered with <see cref="IpyRpcServer.RegisterFromServices"/> are resolved from it,
    /// once per call. The Generic Host integration (<c>services.AddIpyRpc()</c>) sets it; unset, there are none.
    /// </summary>
    public Func<(IServiceProvider Services, IAsyncDisposable Scope)>? CallScopes { get; init; }

    /// <summary>The largest message accepted, in bytes (header plus parts).</summary>
    public long MaxMessageBytes { get; init; } = ProtocolVersion.DefaultMaxMessageBytes;

    /// <summary>
    /// A secret every client must prove it knows before anything else, on every transport: each side
    /// sends a random nonce in its hello and answers the other's with an HMAC-SHA256 (the secret never
    /// travels, and the server proves itself too). A wrong secret fails at connect, loudly. Clients set
    /// <see cref="IpyRpcClientOptions.SharedSecret"/>. Anyone who can reach the server gets its proof for a nonce of their
    /// choosing and can test guesses against it offline, so the secret must be one nobody can guess: random, 16 characters
    /// or more (<c>openssl rand -base64 32</c>); a shorter one is logged as a warning when the server is made.
    /// </summary>
    public string? SharedSecret { get; init; }

    /// <summary>
    /// Whether every caller must be authenticated (by the shared secret, HTTP authentication or a
    /// ZeroMQ CURVE key). Default: yes when <see cref="SharedSecret"/> is set; otherwise only callers
    /// from other machines must be (see <see cref="AllowUnauthenticatedRemote"/>).
    /// </summary>
    public bool? RequireAuthentication { get; init; }

    /// <summary>
    /// On a server that requires authentication, how long a connection may go unauthenticated: one that has not proved
    /// itself this long after it opened (over HTTP requests, after its <c>hello</c>) is closed as
    /// <see cref="DisconnectReason.Unauthorized"/>, so that callers who cannot authenticate do not hold connections open.
    /// A connection that fetches or releases pointers by their keys (which need no authentication) counts from its last
    /// such request. Default 30 s; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.
    /// </summary>
    public TimeSpan AuthenticationTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Serves unauthenticated callers from other machines. Off by default: a server with no
    /// authentication answers only this machine (loopback, ipc, in process), and refuses to bind a
    /// non-loopback address at all. Turning it on is logged at startup as a warning.
    /// </summary>
    public bool AllowUnauthenticatedRemote { get; init; }

    /// <summary>Whether <c>describe</c> and <c>rpc.discover</c> list only the functions the caller may call (see <see cref="FunctionOptions.Auth"/>).</summary>
    public bool ListOnlyAllowedFunctions { get; init; } = true;

    /// <summary>
    /// The most calls one connection may have queued or running at once. Past it a call waits to start, in the
    /// connection's line (<see cref="MaxCallsWaitingPerConnection"/>), until one of them ends. Default: half of
    /// <see cref="Concurrency"/> (at least 8), so one client cannot take every execution slot from the others; 256 on a
    /// server that runs no jobs itself.
    /// </summary>
    public int? MaxCallsInFlightPerConnection { get; init; }

    /// <summary>
    /// How many calls may wait to start on one connection that has <see cref="MaxCallsInFlightPerConnection"/> running:
    /// they start in the order they came as those end, their time waiting counted in their timeout; a caller can cancel
    /// one that waits. Past it (or past <see cref="MaxBytesInFlightPerConnection"/>, which counts their arguments too) a
    /// call gets <c>too_many_requests</c>. 0 refuses a call at once when the connection has no room.
    /// </summary>
    public int MaxCallsWaitingPerConnection { get; init; } = 10_000;

    /// <summary>The most argument bytes one connection may have in calls queued, running or waiting to start at once; past it, <c>too_many_requests</c>.</summary>
    public long MaxBytesInFlightPerConnection { get; init; } = 1024L * 1024 * 1024;

    /// <summary>Whether console output of calls is captured and sent to callers.</summary>
    public bool CaptureOutput { get; init; } = true;

    /// <summary>
    /// How many bytes of a call's console output and progress reports may wait for a caller that reads slowly
    /// (its network, or a process that is stopped or busy) before the function's next line or report waits for
    /// room (stream items have the caller's credit window instead): a producer is slowed
    /// to its reader's speed, and the server's memory does not grow with a slow reader's backlog. A caller
    /// that goes away, a cancel or a shutdown releases a waiting function at once. Applies to calls run by this
    /// server's own workers on an in-memory queue; output of jobs on durable queues is recorded in the store,
    /// and functions configured <see cref="FunctionOptions.Inline"/> are never made to wait (they run on the
    /// receiving thread, which sends what they wait for). Default 4 MiB.
    /// </summary>
    public long MaxBufferedOutputBytesPerCall { get; init; } = 4L * 1024 * 1024;

    /// <summary>
    /// Where the server logs: every unexpected failure (with the connection, the function and the
    /// job it concerns) at Error, refusals at Warning, each call at Debug. Default: nowhere.
    /// </summary>
    public Microsoft.Extensions.Logging.ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// How many published events may wait for one connection that has not taken them yet (its
    /// network or its process is slow). Past it, <see cref="EventOverflow"/> decides; the publisher and
    /// the other subscribers are never held up.
    /// </summary>
    public int EventBufferSize { get; init; } = 1024;

    /// <summary>What happens to a connection whose event buffer is full.</summary>
    public EventOverflow EventOverflow { get; init; } = EventOverflow.DropOldest;

    /// <summary>
    /// How many of its latest events the server keeps, numbered, so that a client whose connection dropped hears the
    /// events its subscriptions missed meanwhile when it reconnects, once and in order, before the live ones (the .NET
    /// and Python clients ask for them by themselves). When more were published than are kept, or the client comes back
    /// to another server (or this one restarted), its subscriptions say so (<see cref="IpyRpcSubscription.Gap"/>).
    /// 0 keeps none: a reconnected client hears only what is published after it subscribed again. A server served over
    /// HTTP keeps one history for this and for its event stream (<c>IpyRpcHttpOptions.EventStreamHistory</c>), of the
    /// larger of the two counts and of the two sizes.
    /// </summary>
    public int EventHistory { get; init; } = 256;

    /// <summary>
    /// The most bytes the payloads of the events kept for <see cref="EventHistory"/> take together (as MessagePack; a
    /// subscriber that asked for JSON is replayed JSON made from it): past it the oldest go first, so a server whose events
    /// are large keeps fewer of them (one larger than this is not kept).
    /// </summary>
    public long EventHistoryBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>The name sent in the hello.</summary>
    public string Agent { get; init; } = "ipyrpc-dotnet/" + ProtocolVersion.Current;

    /// <summary>
    /// Where results returned as pointers are kept (see <see cref="FunctionOptions.ReturnPointer"/>),
    /// with its byte budget and time to live. Unset: a store of the server's own with the defaults of
    /// <see cref="DataStoreOptions"/>, dropped when the server is disposed. A store given here is not disposed by the server.
    /// </summary>
    public IpyRpcDataStore? DataStore { get; init; }

    /// <summary>
    /// Holders of other deployments this server connects to when it resolves a pointer for a caller (an argument, a
    /// JSON-RPC <c>rpc.fetch</c>): globs over their addresses, such as <c>zmq://10.0.0.*:5601</c> or
    /// <c>http://data.example.com:443/ipyrpc</c> (<c>*</c>: any). Pointers its own deployment made (sealed under the key of
    /// one of its queues, <see cref="IJobQueue.PointerKey"/>) need no entry here; any other is refused
    /// <c>pointer_denied</c> without a connection. Empty by default.
    /// </summary>
    public IReadOnlyList<string> TrustedHolders { get; init; } = [];
}

/// <summary>What a server does when a subscriber's event buffer (<see cref="IpyRpcServerOptions.EventBufferSize"/>) is full.</summary>
public enum EventOverflow
{
    /// <summary>Drop the oldest waiting event to make room; the next event delivered says how many were dropped (<c>dropped</c>).</summary>
    DropOldest,
    /// <summary>Drop the new event; the next event delivered says how many were dropped.</summary>
    DropNewest,
    /// <summary>Close the connection (<see cref="DisconnectReason.ClosedByServer"/>): a subscriber that must not miss events learns it fell behind.</summary>
    Disconnect,
}
