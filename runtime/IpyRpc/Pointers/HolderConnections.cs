using System.Collections.Concurrent;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// How a process reaches the holder of a pointer, by protocol. The transports register themselves
/// when their assembly loads (<c>zmq</c> by IpyRpc.ZeroMq, <c>http</c>/<c>https</c> by IpyRpc.Http), and a
/// fetch over a transport this process has not used yet loads that transport's assembly when the app
/// references it. Where assemblies cannot be loaded at run time (NativeAOT), call the transport's
/// <c>RegisterPointerConnector()</c> once (or register a connector of your own here).
/// </summary>
public static class PointerConnectors
{
    private static readonly ConcurrentDictionary<string, Func<PointerEndpoint, IpyRpcClientOptions, CancellationToken, Task<IpyRpcClient>>> Map = new(StringComparer.Ordinal);

    /// <summary>Sets how to connect to holders that serve over <paramref name="protocol"/>.</summary>
    public static void Register(string protocol, Func<PointerEndpoint, IpyRpcClientOptions, CancellationToken, Task<IpyRpcClient>> connect)
    {
        ArgumentException.ThrowIfNullOrEmpty(protocol);
        ArgumentNullException.ThrowIfNull(connect);
        Map[protocol] = connect;
    }

    /// <summary>The protocols this process can fetch over.</summary>
    public static IReadOnlyCollection<string> Protocols => [.. Map.Keys];

    internal static Func<PointerEndpoint, IpyRpcClientOptions, CancellationToken, Task<IpyRpcClient>>? Find(string protocol)
    {
        if (Map.TryGetValue(protocol, out var connect)) return connect;

        // The transport's package may be referenced but not loaded yet (nothing in this process used it):
        // load it, which registers its connectors. Where assemblies cannot be loaded (NativeAOT), its
        // RegisterPointerConnector() is the way.
        string? assembly = protocol switch
        {
            "zmq" => "IpyRpc.ZeroMq",
            "http" or "https" => "IpyRpc.Http",
            _ => null,
        };
        if (assembly is not null)
        {
            try
            {
                System.Reflection.Assembly loaded = System.Reflection.Assembly.Load(assembly);
                System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(loaded.ManifestModule.ModuleHandle);
            }
            catch (Exception e) when (e is IOException or BadImageFormatException or PlatformNotSupportedException or NotSupportedException)
            {
                // Not there: the caller says which package to reference.
            }
        }

        return Map.GetValueOrDefault(protocol);
    }
}

/// <summary>
/// Connections to the holders of pointers, one per address, opened on first use and kept until
/// disposed: what a client fetches through, and what a worker resolves another holder's pointers through.
/// A pointer held in this very process is read from its store, with no connection at all.
/// </summary>
/// <param name="credentials">Its secret and limits, for the connections.</param>
/// <param name="trust">Which holders it connects to (a server's or worker's, for its callers); <see langword="null"/>: any (a client's own fetches).</param>
internal sealed class HolderConnections(Func<IpyRpcClientOptions> credentials, HolderTrust? trust = null) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<PointerEndpoint, Lazy<Task<IpyRpcClient>>> _clients = new();
    private long _bytesFetched;
    private int _disposed;

    /// <summary>How long connecting to a holder may take before it counts as unreachable.</summary>
    internal static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The holders' connections of an owner, created on first use (<paramref name="credentials"/>: its secret and limits).</summary>
    public static HolderConnections Ensure(ref HolderConnections? field, Func<IpyRpcClientOptions> credentials, HolderTrust? trust = null)
    {
        if (Volatile.Read(ref field) is { } existing) return existing;
        var fresh = new HolderConnections(credentials, trust);
        return Interlocked.CompareExchange(ref field, fresh, null) ?? fresh;
    }

    // A connection to a holder is for fetches only: no reconnects (a gone holder is reported, not retried), no console output.
    private IpyRpcClientOptions Options() => credentials() with { Reconnect = null, ConnectTimeout = ConnectTimeout, Output = static (_, _) => { } };

    /// <summary>
    /// Whether a pointer held by a store in this process is read from that store directly. Tests of
    /// the transports turn it off, so their holder (which lives in the test's process) is fetched over the wire.
    /// </summary>
    internal static bool UseLocalStores { get; set; } = true;

    /// <summary>Bytes of values and rows fetched from holders in other processes.</summary>
    public long BytesFetched => Interlocked.Read(ref _bytesFetched);

    /// <summary>The value (or rows) a pointer points to, encoded in <paramref name="serialization"/>.</summary>
    /// <exception cref="IpyRpcPointerException">Gone (expired, released, evicted), wrong key, or the holder could not be reached.</exception>
    public async Task<ReadOnlyMemory<byte>> FetchAsync(RemotePointer pointer, long? start, long? stop, Serialization serialization, CancellationToken cancellationToken)
    {
        if (UseLocalStores && IpyRpcDataStore.Find(pointer.Holder) is { } local)
        {
            try
            {
                return local.Fetch(pointer.Path, pointer.SecretKey, start, stop, serialization);
            }
            catch (PointerFault fault)
            {
                throw IpyRpcException.FromRemote(fault.Error, null);
            }
        }

        var body = new Dictionary<string, object?> { ["path"] = pointer.Path, ["secret_key"] = pointer.SecretKey };
        if (start is not null) body["start"] = start;
        if (stop is not null) body["stop"] = stop;
        IpyRpcMessage reply = await SendAsync(pointer, new IpyRpcMessage
        {
            Kind = MessageKind.Fetch,
            Serialization = serialization,
            Parts = [JobCodec.Encode(body, serialization)],
        }, cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _bytesFetched, reply.Body.Length);
        return reply.Body;
    }

    /// <summary>Drops the value at its holder.</summary>
    public async Task ReleaseAsync(RemotePointer pointer, CancellationToken cancellationToken)
    {
        if (UseLocalStores && IpyRpcDataStore.Find(pointer.Holder) is { } local)
        {
            local.Release(pointer);
            return;
        }

        await SendAsync(pointer, new IpyRpcMessage
        {
            Kind = MessageKind.Release,
            Parts = [JobCodec.Encode(new Dictionary<string, object?> { ["path"] = pointer.Path, ["secret_key"] = pointer.SecretKey }, Serialization.MessagePack)],
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task<IpyRpcMessage> SendAsync(RemotePointer pointer, IpyRpcMessage message, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed == 1, this);
        var failures = new List<string>();
        bool sealedHere = trust is null || trust.IsSealed(pointer);
        bool refused = false, tried = false;
        foreach (PointerEndpoint endpoint in pointer.Alternates.Prepend(pointer.Endpoint))
        {
            if (endpoint.Protocol == PointerEndpoint.InProcess)
            {
                failures.Add("inproc: the holder is not in this process (it is gone, or it serves no transport this process can reach)");
                continue;
            }

            if (!sealedHere && !trust!.IsListed(endpoint))
            {
                // Not a holder of this deployment: connecting would let a caller point this process at any host and port.
                failures.Add(trust.Refusal(pointer, endpoint));
                refused = true;
                continue;
            }

            if (PointerConnectors.Find(endpoint.Protocol) is not { } connect)
            {
                failures.Add($"{endpoint}: this process has no connector for \"{endpoint.Protocol}\" (it has: {string.Join(", ", PointerConnectors.Protocols.DefaultIfEmpty("none"))}; reference the transport's package and call its RegisterPointerConnector())");
                continue;
            }

            tried = true;
            Lazy<Task<IpyRpcClient>> lazy = _clients.GetOrAdd(endpoint, e => new Lazy<Task<IpyRpcClient>>(() => connect(e, Options(), CancellationToken.None)));
            IpyRpcClient client;
            try
            {
                client = await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                _clients.TryRemove(new KeyValuePair<PointerEndpoint, Lazy<Task<IpyRpcClient>>>(endpoint, lazy));
                failures.Add($"{endpoint}: {e.Message}");
                continue;
            }

            try
            {
                return await client.RequestAsync(message, MessageCodec.KindName(message.Kind), null, cancellationToken).ConfigureAwait(false);
            }
            catch (IpyRpcConnectionException e)
            {
                // The holder went away since this connection was opened: forget it, so a restarted holder can be reached again.
                if (_clients.TryRemove(new KeyValuePair<PointerEndpoint, Lazy<Task<IpyRpcClient>>>(endpoint, lazy))) _ = client.DisposeAsync().AsTask();
                failures.Add($"{endpoint}: {e.Message}");
            }
        }

        if (refused && !tried)
        {
            trust!.Refused(pointer);
            throw new IpyRpcPointerException(new RemoteError
            {
                Code = ErrorCodes.PointerDenied,
                Message = $"The holder of {pointer} is not one this process trusts, so it was not contacted: {string.Join("; ", failures)}.",
            });
        }

        throw new IpyRpcPointerException(new RemoteError
        {
            Code = ErrorCodes.HolderUnreachable,
            Message = $"The holder of {pointer} could not be reached: {string.Join("; ", failures)}",
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        foreach (Lazy<Task<IpyRpcClient>> lazy in _clients.Values)
        {
            if (!lazy.IsValueCreated) continue;
            try
            {
                await (await lazy.Value.ConfigureAwait(false)).DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception)
            {
                // It never connected: nothing to close.
            }
        }

        _clients.Clear();
    }
}
