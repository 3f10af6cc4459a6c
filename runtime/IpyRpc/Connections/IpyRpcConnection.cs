using System.Collections.Concurrent;
using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;

namespace IpyRpc;

/// <summary>
/// One logical connection, on any transport: who is on the other side (its <see cref="Principal"/>),
/// from where, since when, state that lives as long as it does, and (where the transport keeps a
/// connection open both ways) a way to call the other side: it is an <see cref="IpyRpcPeer"/>, so
/// <c>connection.Proxy&lt;NotebookClient&gt;().ShowAsync(...)</c> calls a function the client exports.
/// A function can take it as a parameter, the way it takes a <see cref="CancellationToken"/>:
/// <c>[IpyRpcExport] public static string WhoAmI(IpyRpcConnection connection) => connection.Principal.Identity?.Name ?? "nobody";</c>
/// Servers hand it over in <see cref="IpyRpcServer.ClientConnected"/> too.
/// </summary>
public sealed class IpyRpcConnection : IpyRpcPeer
{
    private static readonly ClaimsPrincipal Anonymous = new(new ClaimsIdentity());
    private readonly CancellationTokenSource _closed = new();
    private readonly object _gate = new();
    private ClaimsPrincipal _principal;
    // Whether _principal is authenticated, as read when it was set: every call asks, and a principal's identity is
    // looked up through an enumerator of its own each time.
    private bool _authenticated;
    private PeerLink? _link;
    private string? _cannotCall;
    private Func<DisconnectInfo, ValueTask>? _close;
    private DisconnectInfo? _disconnect;
    private Task _announcements = Task.CompletedTask;

    /// <summary>Creates a connection (transports do this, once per peer).</summary>
    /// <param name="transport">The transport's name: <c>in-process</c>, <c>http</c>, <c>zeromq</c>.</param>
    /// <param name="remoteAddress">Where the peer is, as the transport sees it (<c>127.0.0.1:50312</c>), or <see langword="null"/> in process.</param>
    /// <param name="principal">Who the peer is, when the transport already knows (HTTP authentication, a CURVE key); anonymous otherwise.</param>
    public IpyRpcConnection(string transport, string? remoteAddress, ClaimsPrincipal? principal = null)
        : this(NewId(), transport, remoteAddress, principal)
    {
    }

    /// <summary>A copy of a connection elsewhere, for a job run by a worker in another process: same id and principal, nothing live.</summary>
    internal IpyRpcConnection(string id, string transport, string? remoteAddress, ClaimsPrincipal? principal)
    {
        Id = id;
        Transport = transport;
        RemoteAddress = remoteAddress;
        _principal = principal ?? Anonymous;
        _authenticated = IsAuthenticatedPrincipal(_principal);
        IsLoopback = IsLoopbackAddress(remoteAddress);
    }

    // Random bytes for ids, drawn from the system's generator a few hundred ids at a time: a connection can live as
    // briefly as one HTTP request, and one call into the generator each cost more than the rest of the connection.
    [ThreadStatic] private static byte[]? t_random;
    [ThreadStatic] private static int t_randomUsed;

    private static string NewId()
    {
        const int IdBytes = 16;
        byte[] random = t_random ??= new byte[IdBytes * 256];
        if (t_randomUsed == 0 || t_randomUsed == random.Length)
        {
            RandomNumberGenerator.Fill(random);
            t_randomUsed = 0;
        }

        Span<byte> id = random.AsSpan(t_randomUsed, IdBytes);
        t_randomUsed += IdBytes;
        string hex = Convert.ToHexStringLower(id);
        id.Clear(); // an id handed out is not left behind in the buffer
        return hex;
    }

    /// <summary>A random id, unguessable (128 bits): over HTTP it is what ties requests to their connection.</summary>
    public string Id { get; }

    /// <summary>The transport: <c>in-process</c>, <c>http</c> or <c>zeromq</c>.</summary>
    public string Transport { get; }

    /// <summary>Where the peer is, as the transport sees it; <see langword="null"/> in process.</summary>
    public string? RemoteAddress { get; }

    /// <summary>Whether the peer is on this machine (in process, a loopback address, or an ipc socket).</summary>
    public bool IsLoopback { get; }

    /// <summary>When the connection was opened.</summary>
    public DateTimeOffset ConnectedAt { get; } = DateTimeOffset.UtcNow;

    /// <summary>Who is on the other side: anonymous until the peer authenticates (shared secret, HTTP authentication, a CURVE key).</summary>
    public ClaimsPrincipal Principal => _principal;

    /// <summary>Whether the peer has authenticated.</summary>
    public bool IsAuthenticated => Volatile.Read(ref _authenticated);

    private static bool IsAuthenticatedPrincipal(ClaimsPrincipal principal) => principal.Identity?.IsAuthenticated == true;

    /// <summary>State that lives as long as the connection (a session's cache, a user's choices).</summary>
    public ConcurrentDictionary<string, object?> Items
    {
        get
        {
            // Made on first use: most connections never keep state.
            ConcurrentDictionary<string, object?>? items = Volatile.Read(ref _items);
            if (items is not null) return items;
            Interlocked.CompareExchange(ref _items, new ConcurrentDictionary<string, object?>(StringComparer.Ordinal), null);
            return _items!;
        }
    }

    private ConcurrentDictionary<string, object?>? _items;

    /// <summary>Cancelled when the connection closes.</summary>
    public CancellationToken Closed => _closed.Token;

    private Jobs.JobCaller? _caller;

    /// <summary>
    /// The connection as its jobs record their caller: one object while the principal stays the same, shared by
    /// every job's record (a server keeps many finished ones).
    /// </summary>
    internal Jobs.JobCaller Caller
    {
        get
        {
            Jobs.JobCaller? caller = Volatile.Read(ref _caller);
            if (caller is null || !ReferenceEquals(caller.Principal, _principal))
            {
                caller = Jobs.JobCaller.Of(this);
                Volatile.Write(ref _caller, caller);
            }

            return caller;
        }
    }

    /// <summary>For transports and authenticators: sets who the peer is, once it has proven it.</summary>
    public void Authenticate(ClaimsPrincipal principal)
    {
        _principal = principal;
        Volatile.Write(ref _authenticated, IsAuthenticatedPrincipal(principal));
    }

    /// <summary>Whether this connection can carry calls to the other side now (its transport keeps it open both ways, and it is open).</summary>
    public bool CanCall => _link is { Broken: null };

    /// <summary>How the connection ended, once it has.</summary>
    public DisconnectInfo? Disconnect => _disconnect;

    /// <summary>Raised once, when the connection ends, with why (after <see cref="Closed"/> fires). Handlers run off the transport's threads.</summary>
    public event Action<IpyRpcConnection, DisconnectInfo>? Disconnected;

    /// <summary>
    /// Closes the connection from this side: the other side is told why (a <c>close</c> message
    /// with <paramref name="reason"/>), its calls here are cancelled, and calls to it fail.
    /// <see cref="DisconnectReason.Unauthorized"/> tells a client its credentials were revoked (it does not reconnect).
    /// </summary>
    public ValueTask CloseAsync(string message, DisconnectReason reason = DisconnectReason.ClosedByServer)
        => _close is { } close ? close(new DisconnectInfo(reason, message)) : default;

    /// <summary>For sessions: calls to the other side go through <paramref name="link"/>; <paramref name="close"/> ends the connection.</summary>
    internal void Attach(PeerLink? link, Func<DisconnectInfo, ValueTask>? close, string? cannotCall = null)
    {
        _link = link;
        _close = close;
        _cannotCall = cannotCall;
    }

    private protected override PeerLink CurrentLink()
    {
        if (_link is { } link) return link;
        throw new IpyRpcConnectionException(_disconnect is { } gone
            ? $"{this} has ended ({gone.Message}): it cannot carry calls any more."
            : $"{this} cannot carry calls to its other side: {_cannotCall ?? "it is a record of the caller, not a live connection (the function runs on a worker in another process)"}.");
    }

    private protected override Serialization DefaultSerialization => Serialization.MessagePack;

    private protected override TimeSpan? DefaultTimeout => null;

    private protected override Action<OutputStream, string>? DefaultOutput => null;

    /// <summary>Runs connection events one after another, off the transport's threads, in the order they happened.</summary>
    internal void Announce(Action action, Microsoft.Extensions.Logging.ILogger log)
    {
        lock (_gate)
        {
            _announcements = _announcements.ContinueWith(_ =>
            {
                try
                {
                    action();
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    Microsoft.Extensions.Logging.LoggerExtensions.LogError(log, e, "A connection event handler failed for {Connection}", this);
                }
            }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    /// <summary>Marks the connection ended: its token fires, calls to the other side fail, <see cref="Disconnected"/> is raised when <paramref name="raise"/>.</summary>
    internal void Ended(DisconnectInfo info, bool raise, Microsoft.Extensions.Logging.ILogger log, Action<IpyRpcConnection, DisconnectInfo>? serverHandlers)
    {
        lock (_gate)
        {
            if (_disconnect is not null) return;
            _disconnect = info;
        }

        _link?.Close(info.ToException("the client"));
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }

        if (raise)
        {
            Announce(() =>
            {
                Disconnected?.Invoke(this, info);
                serverHandlers?.Invoke(this, info);
            }, log);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Transport} connection {Id[..8]} from {RemoteAddress ?? "this process"} as {_principal.Identity?.Name ?? "anonymous"}";

    /// <summary>Whether an address (as transports write it: <c>host:port</c>, <c>[v6]:port</c>, an ipc path) is on this machine.</summary>
    public static bool IsLoopbackAddress(string? address)
    {
        if (address is null or "" || address.StartsWith('/') || address.StartsWith("ipc://", StringComparison.Ordinal) || address.StartsWith("inproc://", StringComparison.Ordinal))
        {
            return true;
        }

        string host = address;
        if (host.StartsWith("tcp://", StringComparison.Ordinal)) host = host[6..];
        if (host == "localhost" || host.StartsWith("localhost:", StringComparison.Ordinal)) return true; // also libzmq's "localhost:uid:gid:pid" for ipc peers
        if (host.StartsWith('['))
        {
            int end = host.IndexOf(']');
            host = end > 0 ? host[1..end] : host;
        }
        else if (host.Count(c => c == ':') == 1)
        {
            host = host[..host.IndexOf(':')];
        }

        return host == "localhost" || (IPAddress.TryParse(host, out IPAddress? ip) && IPAddress.IsLoopback(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip));
    }
}
