namespace IpyRpc.Http;

/// <summary>Options of the HTTP endpoints.</summary>
public sealed record IpyRpcHttpOptions
{
    /// <summary>The path of the JSON-RPC 2.0 endpoint.</summary>
    public string JsonRpcPath { get; init; } = "/rpc";

    /// <summary>
    /// The path of the binary protocol endpoint: a WebSocket (GET with <c>Upgrade: websocket</c>, subprotocol
    /// <c>ipyrpc.v1</c>) carrying one connection both ways, or POSTs of one framed message each, framed messages streamed back.
    /// </summary>
    public string BinaryPath { get; init; } = "/ipyrpc";

    /// <summary>
    /// Origins of web pages (<c>https://app.example.com</c>, <c>http://localhost:3000</c>; <c>*</c> for any) that may call
    /// the server from a browser: their WebSocket connections and requests are served, with the CORS headers (and
    /// preflight answers) their browser needs. Requests that name no <c>Origin</c> (curl, the .NET and Python clients)
    /// are never affected, and a page of the server's own origin is allowed (on a loopback listener, only under a
    /// loopback name such as <c>localhost</c>: another name resolving to it is a DNS-rebinding attack). A page of any
    /// other origin is refused with <c>403</c>: otherwise any site its user visits could call a server on their machine.
    /// An app's own CORS policy (<c>UseCors</c>) does not open these endpoints: list the origins here as well.
    /// </summary>
    public IReadOnlyList<string> AllowedOrigins { get; init; } = [];

    /// <summary>
    /// The path of the event stream: <c>GET</c> with <c>?pattern=NAME_OR_GLOB</c> (repeatable; none: every event) answers
    /// <c>text/event-stream</c> (Server-Sent Events), each of the server's events as <c>event: NAME</c> and <c>data: JSON</c>,
    /// for browsers (<c>EventSource</c>), <c>curl -N</c> and other clients without a connection both ways (docs/PROTOCOL.md).
    /// </summary>
    public string EventsPath { get; init; } = "/events";

    /// <summary>How often an event stream that has nothing to send writes a comment line, so proxies and clients see it is alive.</summary>
    public TimeSpan EventStreamKeepAlive { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How many of the server's latest events it keeps for event streams that reconnect: each event goes out with an
    /// <c>id:</c>, and a stream that comes back with the last one it had (<c>Last-Event-ID</c>, which a browser's
    /// <c>EventSource</c> sends by itself) first hears the events it missed, or <c>ipyrpc.missed</c> when they are no
    /// longer kept. 0 keeps none for streams: events go without ids and a stream always starts at its request. The
    /// server keeps one history for streams and for its clients' subscriptions
    /// (<see cref="IpyRpcServerOptions.EventHistory"/>), of the larger of the two counts and of the two sizes.
    /// </summary>
    public int EventStreamHistory { get; init; } = 256;

    /// <summary>
    /// The most bytes of payloads the events kept for <see cref="EventStreamHistory"/> take together (as MessagePack; a
    /// stream that resumes is replayed JSON made from it): past it the oldest go first, so a server whose events are large
    /// keeps fewer of them (one larger than this is not kept).
    /// </summary>
    public long EventStreamHistoryBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>The largest JSON-RPC request body, in bytes.</summary>
    public long MaxJsonRequestBytes { get; init; } = 16 * 1024 * 1024;

    /// <summary>The deepest JSON nesting accepted in a JSON-RPC request.</summary>
    public int MaxJsonDepth { get; init; } = 64;

    /// <summary>The title of the OpenRPC document <c>rpc.discover</c> returns.</summary>
    public string Title { get; init; } = "IpyRpc server";

    /// <summary>The version in the OpenRPC document.</summary>
    public string Version { get; init; } = "1.0.0";

    /// <summary>
    /// How long a binary-protocol connection (the requests of one client, tied by the
    /// <c>IpyRpc-Connection</c> header) lives without any request in flight: how a client that vanished without a
    /// <c>close</c> is forgotten. After it the connection ends as a disconnect would. The answer to <c>hello</c> names
    /// this timeout (<c>IpyRpc-Idle-Timeout</c>), and a live client that is quiet pings within it, so it keeps its
    /// connection; a request that names an ended connection is answered <c>404</c> with <c>connection_lost</c>, and the
    /// client connects again (one the server closed on purpose is answered with that <c>close</c> instead, and the client
    /// stays closed). <see cref="Timeout.InfiniteTimeSpan"/>: only when the client closes it.
    /// </summary>
    public TimeSpan ConnectionIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The most binary-protocol connections over HTTP requests the endpoint holds at once (each is a session the server
    /// keeps between requests, until the client closes it or it idles out). Past it, a <c>hello</c>, or a request that
    /// names no connection (a connection for that request only), is answered <c>503</c> with <c>too_many_requests</c>,
    /// and the connections already held are served as before. WebSocket connections are TCP connections of their own
    /// and do not count here (Kestrel's <c>MaxConcurrentUpgradedConnections</c> can bound them; on a server that requires
    /// authentication, those that do not authenticate end after <see cref="IpyRpcServerOptions.AuthenticationTimeout"/>).
    /// </summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>
    /// How often the server's end of a WebSocket connection pings the client (a WebSocket ping frame),
    /// which also keeps proxies from closing a quiet connection.
    /// </summary>
    public TimeSpan WebSocketKeepAlive { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long the server waits for the pong to a WebSocket ping before it gives the client up (the
    /// connection ends with <c>connection_lost</c>): how a client that vanished without closing its
    /// socket (a cut network, a suspended machine) is noticed. <see cref="Timeout.InfiniteTimeSpan"/> never gives up.
    /// </summary>
    public TimeSpan WebSocketKeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
