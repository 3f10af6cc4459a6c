using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// What a function can do with pointers while it runs. It asks for this with an <see cref="IpyRpcPointers"/> parameter,
/// which the call fills (it is never listed, and callers pass nothing for it), as it fills a <see cref="CancellationToken"/>.
/// </summary>
/// <remarks>
/// <para>A function given a pointer where it takes the value gets the whole value (fetched from its holder before the
/// function starts, when that is another process). One that reads only part of a large value takes the pointer itself
/// (a <see cref="RemotePointer{T}"/> parameter) and fetches the rows it needs here: only those cross the network.</para>
/// <para>A function that makes several large values keeps them here and returns their pointers (in a record, a list),
/// where <see cref="FunctionOptions.ReturnPointer"/> keeps only the one result.</para>
/// </remarks>
public sealed class IpyRpcPointers
{
    private readonly FunctionRegistry _registry;
    private readonly string? _protocol;
    private readonly CancellationToken _call;

    internal IpyRpcPointers(FunctionRegistry registry, string? protocol, CancellationToken call)
    {
        _registry = registry;
        _protocol = protocol;
        _call = call;
    }

    /// <summary>The whole value a pointer points to: a copy, read from this process's store or fetched from its holder.</summary>
    /// <param name="pointer">The pointer.</param>
    /// <param name="cancellationToken">Stops the fetch; by default, the call's own token.</param>
    /// <exception cref="IpyRpcPointerException">Gone (expired, released, evicted), a wrong key, a holder that cannot be reached, or one this process does not trust (docs/SECURITY.md).</exception>
    public Task<T> FetchAsync<T>(RemotePointer<T> pointer, CancellationToken cancellationToken = default)
        => FetchAsync(pointer, null, null, cancellationToken);

    /// <summary>
    /// Rows <c>[start, stop)</c> of the value a pointer points to (an array's first dimension, a list's items, a data
    /// frame's rows): only those are read or cross the network. Negative indices count from the end; indices past the
    /// end are clamped, as in Python.
    /// </summary>
    /// <exception cref="IpyRpcPointerException">As <see cref="FetchAsync{T}(RemotePointer{T}, CancellationToken)"/>; <c>bad_message</c> for a value without rows.</exception>
    public Task<T> FetchAsync<T>(RemotePointer<T> pointer, long start, long stop, CancellationToken cancellationToken = default)
        => FetchAsync(pointer, (long?)start, stop, cancellationToken);

    private async Task<T> FetchAsync<T>(RemotePointer<T> pointer, long? start, long? stop, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        ReadOnlyMemory<byte> bytes = await _registry.Holders.FetchAsync(pointer, start, stop, Serialization.MessagePack, Token(cancellationToken)).ConfigureAwait(false);
        return Decode(bytes, FormatterRegistry.Get<T>());
    }

    private static T Decode<T>(ReadOnlyMemory<byte> bytes, IpyRpcFormatter<T> formatter)
    {
        var reader = new MessagePackReader(bytes.Span) { MaxDepth = 128 };
        return formatter.Read(ref reader);
    }

    /// <summary>Drops the value a pointer points to at its holder. Releasing twice is not an error.</summary>
    /// <exception cref="IpyRpcPointerException">A wrong key, or a holder that cannot be reached or is not trusted.</exception>
    public Task ReleaseAsync(RemotePointer pointer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        return _registry.Holders.ReleaseAsync(pointer, Token(cancellationToken));
    }

    /// <summary>
    /// Keeps <paramref name="value"/> in this process's data store (the server's, or the worker's that runs the call) and
    /// returns a pointer to it, addressed over the caller's transport where the store is served on several.
    /// </summary>
    /// <param name="value">The value.</param>
    /// <param name="timeToLive">How long to keep it: by default <see cref="DataStoreOptions.DefaultTimeToLive"/>; <see cref="Timeout.InfiniteTimeSpan"/> until released or evicted.</param>
    /// <exception cref="IpyRpcException"><c>too_large</c>: the value alone is larger than the store's budget.</exception>
    /// <exception cref="InvalidOperationException">This process keeps no data store (a client's exports).</exception>
    public RemotePointer<T> Keep<T>(T value, TimeSpan? timeToLive = null)
        => (_registry.Data ?? throw new InvalidOperationException("This process keeps no data store, so a function it runs cannot keep values for pointers."))
            .Put(value, FormatterRegistry.Get<T>(), timeToLive, _protocol);

    private CancellationToken Token(CancellationToken given) => given.CanBeCanceled ? given : _call;
}
