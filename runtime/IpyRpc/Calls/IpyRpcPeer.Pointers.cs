using IpyRpc.Formatting;
using IpyRpc.Protocol;

namespace IpyRpc;

public abstract partial class IpyRpcPeer
{
    private HolderConnections? _holders;

    /// <summary>The credentials and limits of connections this peer opens to pointers' holders.</summary>
    private protected virtual IpyRpcClientOptions HolderOptions => new();

    internal HolderConnections Holders => HolderConnections.Ensure(ref _holders, () => HolderOptions);

    /// <summary>Closes the connections opened to holders.</summary>
    private protected ValueTask DisposeHoldersAsync() => _holders?.DisposeAsync() ?? default;

    /// <summary>
    /// Bytes this peer fetched from holders in other processes (values and rows of pointers it
    /// fetched, or that arrived in place of a value it asked for). Fetches from a holder in this
    /// process read its store and count nothing.
    /// </summary>
    public long PointerBytesFetched => _holders?.BytesFetched ?? 0;

    /// <summary>
    /// Calls <paramref name="function"/> and gets a pointer to its result instead of the result: the
    /// value stays with the process that computed it (the server, or the worker that ran the job).
    /// </summary>
    public Task<RemotePointer<T>> CallPointerAsync<T>(string function, params object?[] args) => CallPointerAsync<T>(function, args, null, CancellationToken.None);

    /// <summary>Calls <paramref name="function"/> for a pointer to its result, with options (<see cref="CallOptions.PointerTimeToLive"/>) and cancellation.</summary>
    public Task<RemotePointer<T>> CallPointerAsync<T>(string function, object?[] args, CallOptions? options, CancellationToken cancellationToken = default)
        => InvokeAsync(function, Positional(args), RemotePointerFormatter<T>.Instance, (options ?? new CallOptions()) with { ReturnPointer = true }, cancellationToken);

    /// <summary>Fetches the whole value a pointer points to, straight from its holder.</summary>
    /// <exception cref="IpyRpcPointerException">The value expired, was released or evicted, the key is wrong, or the holder cannot be reached.</exception>
    public Task<T> FetchAsync<T>(RemotePointer<T> pointer, CancellationToken cancellationToken = default)
        => FetchAsync(pointer, null, null, FormatterRegistry.Get<T>(), cancellationToken);

    /// <summary>
    /// Fetches rows <c>[start, stop)</c> of the value a pointer points to (of an array's first
    /// dimension, or a list's items), straight from its holder: only those rows cross the network.
    /// Negative indices count from the end; indices past the end are clamped, as in Python.
    /// </summary>
    public Task<T> FetchAsync<T>(RemotePointer<T> pointer, long start, long stop, CancellationToken cancellationToken = default)
        => FetchAsync(pointer, start, stop, FormatterRegistry.Get<T>(), cancellationToken);

    /// <summary>Fetches a value, or rows of it, read with <paramref name="formatter"/> (which may read another type than the one kept, as a call's result can).</summary>
    public async Task<T> FetchAsync<T>(RemotePointer pointer, long? start, long? stop, IpyRpcFormatter<T> formatter, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        Serialization serialization = DefaultSerialization;
        ReadOnlyMemory<byte> bytes = await Holders.FetchAsync(pointer, start, stop, serialization, cancellationToken).ConfigureAwait(false);
        return Decode(new IpyRpcMessage { Kind = MessageKind.Result, Serialization = serialization, Parts = [bytes] }, formatter, pointer.Path);
    }

    /// <summary>Drops the value a pointer points to at its holder; later fetches hear it was released. Releasing twice is not an error.</summary>
    public Task ReleaseAsync(RemotePointer pointer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        return Holders.ReleaseAsync(pointer, cancellationToken);
    }

    /// <summary>
    /// The reply's value, fetched from its holder first when the function returned a pointer
    /// (its config says <see cref="FunctionOptions.ReturnPointer"/>) and the caller wants the value:
    /// the bytes come straight from the holder. A caller that asked for <see cref="object"/> gets the
    /// <see cref="RemotePointer"/> itself.
    /// </summary>
    internal async Task<T> ResultAsync<T>(IpyRpcMessage reply, IpyRpcFormatter<T> formatter, string function, CancellationToken cancellationToken)
    {
        if (typeof(RemotePointer).IsAssignableFrom(typeof(T)) || !RemotePointer.TryRead(reply.Body.Span, reply.Serialization, out RemotePointer? pointer))
        {
            try
            {
                return Decode(reply, formatter, function);
            }
            catch (IpyRpcException e) when (e.Code == ErrorCodes.BadMessage && Streams(function))
            {
                // A call of a streaming function is answered with how many items there were, not the items.
                throw new IpyRpcException(new RemoteError
                {
                    Code = ErrorCodes.BadMessage,
                    Message = $"{e.Error.Message}. {function} streams its items, and a call's result is only how many there were: "
                        + $"read the items with StreamAsync<TItem>(\"{function}\", ...) or the typed proxy's method",
                }, function, e.InnerException);
            }
        }

        if (typeof(T) == typeof(object)) return (T)(object)pointer!;
        ReadOnlyMemory<byte> bytes = await Holders.FetchAsync(pointer!, null, null, reply.Serialization, cancellationToken).ConfigureAwait(false);
        return Decode(reply with { Parts = [bytes] }, formatter, function);
    }
}
