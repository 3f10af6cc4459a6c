using System.Collections.Concurrent;
using System.Net;
using System.Security.Claims;
using System.Security.Cryptography;

namespace IpyRpc;

/// <summary>
/// One logical connection to a server, on any transport: who is on the other side (its
/// <see cref="Principal"/>), from where, since when, and state that lives as long as it does.
/// A function can take it as a parameter, the way it takes a <see cref="CancellationToken"/>:
/// <c>[IpyRpcExport] public static string WhoAmI(IpyRpcConnection connection) => connection.Principal.Identity?.Name ?? "nobody";</c>
/// </summary>
public sealed class IpyRpcConnection
{
    private static readonly ClaimsPrincipal Anonymous = new(new ClaimsIdentity());
    private readonly CancellationTokenSource _closed = new();
    private ClaimsPrincipal _principal;

    /// <summary>Creates a connection (transports do this, once per peer).</summary>
    /// <param name="transport">The transport's name: <c>in-process</c>, <c>http</c>, <c>zeromq</c>.</param>
    /// <param name="remoteAddress">Where the peer is, as the transport sees it (<c>127.0.0.1:50312</c>), or <see langword="null"/> in process.</param>
    /// <param name="principal">Who the peer is, when the transport already knows (HTTP authentication, a CURVE key); anonymous otherwise.</param>
    public IpyRpcConnection(string transport, string? remoteAddress, ClaimsPrincipal? principal = null)
        : this(Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant(), transport, remoteAddress, principal)
    {
    }

    /// <summary>A copy of a connection elsewhere, for a job run by a worker in another process: same id and principal, nothing live.</summary>
    internal IpyRpcConnection(string id, string transport, string? remoteAddress, ClaimsPrincipal? principal)
    {
        Id = id;
        Transport = transport;
        RemoteAddress = remoteAddress;
        _principal = principal ?? Anonymous;
        IsLoopback = IsLoopbackAddress(remoteAddress);
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
    public bool IsAuthenticated => _principal.Identity?.IsAuthenticated == true;

    /// <summary>State that lives as long as the connection (a session's cache, a user's choices).</summary>
    public ConcurrentDictionary<string, object?> Items { get; } = new(StringComparer.Ordinal);

    /// <summary>Cancelled when the connection closes.</summary>
    public CancellationToken Closed => _closed.Token;

    /// <summary>For transports and authenticators: sets who the peer is, once it has proven it.</summary>
    public void Authenticate(ClaimsPrincipal principal) => _principal = principal;

    internal void Close()
    {
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
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
