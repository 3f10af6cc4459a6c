using System.Buffers;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// One running call, as the generated invoker sees it: typed access to the arguments, the
/// cancellation token, the service instance, and where the result goes.
/// </summary>
public sealed class IpyRpcInvocation
{
    private readonly (int Offset, int Length)[] _slots;

    /// <summary>Creates an invocation (the server does this for each job).</summary>
    public IpyRpcInvocation(IpyRpcFunction function, CallArguments arguments, Serialization outputSerialization, CancellationToken cancellationToken)
    {
        Function = function;
        Arguments = arguments;
        OutputSerialization = outputSerialization;
        CancellationToken = cancellationToken;
        _slots = arguments.BindShared(function.Descriptor); // only read
    }

    /// <summary>The function being called.</summary>
    public IpyRpcFunction Function { get; }

    /// <summary>
    /// The arguments as they arrived. Read them while the invoker runs: large ones may live in pooled arrays
    /// (<see cref="PooledParts"/>) that go back once the function has returned, so a value read later, from a
    /// task the function left running, must be decoded (copied) before it returns.
    /// </summary>
    public CallArguments Arguments { get; }

    /// <summary>How the result is encoded.</summary>
    public Serialization OutputSerialization { get; }

    /// <summary>The caller's connection: who called, from where. A function asks for it with an <see cref="IpyRpcConnection"/> parameter.</summary>
    public IpyRpcConnection Connection => _connection ??= Host?.Connection() ?? new IpyRpcConnection("none", null);

    private IpyRpcConnection? _connection;

    /// <summary>Fetches rows of pointers, keeps values for new ones: a function asks for it with an <see cref="IpyRpcPointers"/> parameter.</summary>
    public IpyRpcPointers Pointers => _pointers ??= new IpyRpcPointers(
        Registry ?? throw new InvalidOperationException("This invocation was not made by a server or worker, so it reaches no pointers."),
        FunctionRegistry.ProtocolOf(CallerTransport), CancellationToken);

    private IpyRpcPointers? _pointers;

    /// <summary>The registry that runs the call: its data store and its connections to holders.</summary>
    internal FunctionRegistry? Registry { get; init; }

    /// <summary>The caller's transport, whose protocol the pointers <see cref="Pointers"/> keeps are addressed over first.</summary>
    internal string? CallerTransport { get; init; }

    /// <summary>Cancelled when the caller cancels, the call times out, or the server stops.</summary>
    public CancellationToken CancellationToken { get; internal set; }

    /// <summary>The encoded result, once <see cref="Return{T}"/> or <see cref="ReturnVoid"/> ran.</summary>
    public ReadOnlyMemory<byte> Result { get; private set; }

    /// <summary>The pooled arrays a large <see cref="Result"/> was encoded into (see <see cref="Jobs.JobOutcome.ResultPool"/>).</summary>
    internal PooledParts? ResultPool { get; private set; }

    /// <summary>Whether the invocation has a result.</summary>
    public bool HasResult { get; private set; }

    /// <summary>
    /// The services of this call: a scope of its own, when the server resolves exported types from
    /// dependency injection (<see cref="IpyRpcServerOptions.CallScopes"/>); otherwise <see langword="null"/>.
    /// </summary>
    public IServiceProvider? Services { get; internal set; }

    /// <summary>The service instance, for instance methods: the registered instance, or one resolved from this call's <see cref="Services"/>.</summary>
    public TService Target<TService>() where TService : class
        => (Function.Target is FunctionRegistry.ServicesTarget resolved ? Services?.GetService(resolved.Type) as TService : Function.Target as TService)
            ?? Services?.GetService(typeof(TService)) as TService
            ?? throw new InvalidOperationException(Services is null
                ? $"{Function.Name} is an instance method of {typeof(TService).Name}; register an instance with server.Register(instance)."
                : $"{Function.Name} is an instance method of {typeof(TService).Name}, which the service provider cannot create; register it with the host's services.");

    /// <summary>The required argument at <paramref name="index"/>.</summary>
    public T Arg<T>(int index, IpyRpcFormatter<T> formatter)
    {
        (int Offset, int Length) slot = _slots[index];
        if (slot.Offset < 0)
        {
            throw CallArguments.Missing(Function.Descriptor, Function.Descriptor.Parameters[index]);
        }

        return Decode(index, slot, formatter);
    }

    /// <summary>The optional argument at <paramref name="index"/>, or <paramref name="defaultValue"/> when it was not given.</summary>
    public T ArgOrDefault<T>(int index, IpyRpcFormatter<T> formatter, T defaultValue)
    {
        (int Offset, int Length) slot = _slots[index];
        return slot.Offset < 0 ? defaultValue : Decode(index, slot, formatter);
    }

    private T Decode<T>(int index, (int Offset, int Length) slot, IpyRpcFormatter<T> formatter)
    {
        try
        {
            if (_fetched?[index] is { } fetched)
            {
                // A pointer whose holder is another process (its value fetched before the call started), or an argument
                // with pointers inside it (each replaced by its value's encoding).
                if (fetched.Serialization == Serialization.Json)
                {
                    var json = new Utf8JsonReader(fetched.Bytes.Span, new JsonReaderOptions { MaxDepth = 128 });
                    json.Read();
                    return formatter.Read(ref json);
                }

                var reader = new MessagePackReader(fetched.Bytes.Span) { MaxDepth = 128 };
                return formatter.Read(ref reader);
            }

            if (!typeof(RemotePointer).IsAssignableFrom(typeof(T)) && RemotePointer.TryRead(Arguments.Raw(slot), Arguments.Serialization, out RemotePointer? pointer))
            {
                return ResolveHere(index, pointer!, formatter);
            }

            return Arguments.Decode(slot, formatter);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or FormatException or OverflowException or InvalidOperationException)
        {
            // A pointer whose value is of another type, or a pointer map that is not well formed: say so, rather than
            // describe the value's encoding alone.
            ReadOnlySpan<byte> raw = Arguments.Raw(slot);
            string why = RemotePointer.TryRead(raw, Arguments.Serialization, out RemotePointer? pointer)
                ? $", and was given a pointer to a {pointer!.ValueType ?? "value"}{(pointer.Shape is { } shape ? " of shape [" + string.Join(", ", shape) + "]" : "")}, which cannot be read as one: {e.Message}"
                : RemotePointer.ProblemWith(raw, Arguments.Serialization) is { } problem
                    ? $", and was given a data pointer that is not well formed: {problem}"
                    : $": {e.Message}";
            throw CallArguments.WrongType(Function.Descriptor, Function.Descriptor.Parameters[index], why);
        }
    }

    // A pointer held by this process's store: the value itself (or, for another type, converted), with no bytes moving.
    private T ResolveHere<T>(int index, RemotePointer pointer, IpyRpcFormatter<T> formatter)
    {
        ParameterDescriptor p = Function.Descriptor.Parameters[index];
        if (IpyRpcDataStore.Find(pointer.Holder) is not { } store)
        {
            throw new ArgumentBindingException(new RemoteError
            {
                Code = ErrorCodes.HolderUnreachable,
                Parameter = p.Name,
                Message = $"Argument '{p.Name}' of {Function.Name} is a pointer to {pointer}, whose holder is not in this process and was not fetched.",
            });
        }

        try
        {
            return store.Resolve(pointer, formatter);
        }
        catch (PointerFault fault)
        {
            throw new ArgumentBindingException(fault.Error with { Parameter = p.Name, Message = $"Argument '{p.Name}' of {Function.Name} is a pointer that cannot be resolved: {fault.Error.Message}" });
        }
    }

    private (ReadOnlyMemory<byte> Bytes, Serialization Serialization)?[]? _fetched;

    /// <summary>
    /// Fetches, from their holders, the values of pointer arguments held by other processes (in
    /// MessagePack), so the function's arguments decode as if the values had been sent. Pointers held
    /// here are left for <see cref="Arg{T}"/> to resolve in place.
    /// </summary>
    internal async ValueTask FetchPointerArgumentsAsync(HolderConnections holders, CancellationToken cancellationToken)
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            (int Offset, int Length) slot = _slots[i];
            if (slot.Offset < 0) continue;
            ParameterDescriptor p = Function.Descriptor.Parameters[i];
            if (p.Type.Contains("RemotePointer", StringComparison.Ordinal)) continue; // the function wants pointers themselves (one, or a list of them)
            if (!RemotePointer.TryRead(Arguments.Raw(slot), Arguments.Serialization, out RemotePointer? pointer))
            {
                if (NestedPointers.Find(Arguments.Raw(slot), Arguments.Serialization) is { } nested)
                {
                    (_fetched ??= new (ReadOnlyMemory<byte>, Serialization)?[_slots.Length])[i] = (await ResolveNestedAsync(p, slot, nested, holders, cancellationToken).ConfigureAwait(false), Arguments.Serialization);
                }

                continue;
            }

            if (IpyRpcDataStore.Find(pointer!.Holder) is not null) continue;
            try
            {
                (_fetched ??= new (ReadOnlyMemory<byte>, Serialization)?[_slots.Length])[i] = (await holders.FetchAsync(pointer, null, null, Serialization.MessagePack, cancellationToken).ConfigureAwait(false), Serialization.MessagePack);
            }
            catch (IpyRpcException e) when (e is not RemoteException)
            {
                throw new ArgumentBindingException(e.Error with { Parameter = p.Name, Message = $"Argument '{p.Name}' of {Function.Name} is a pointer whose value could not be fetched: {e.Error.Message}" });
            }
        }
    }

    // The argument in the slot with each pointer inside it replaced by its value, in the argument's own serialization:
    // read from its store when held here (a copy, unlike a pointer that is the whole argument), else fetched from its holder.
    private async Task<byte[]> ResolveNestedAsync(ParameterDescriptor p, (int Offset, int Length) slot, List<(int Offset, int Length, RemotePointer Pointer)> nested, HolderConnections holders, CancellationToken cancellationToken)
    {
        var values = new ReadOnlyMemory<byte>[nested.Count];
        for (int k = 0; k < nested.Count; k++)
        {
            try
            {
                values[k] = await holders.FetchAsync(nested[k].Pointer, null, null, Arguments.Serialization, cancellationToken).ConfigureAwait(false);
            }
            catch (IpyRpcException e) when (e is not RemoteException)
            {
                throw new ArgumentBindingException(e.Error with { Parameter = p.Name, Message = $"Argument '{p.Name}' of {Function.Name} holds a pointer whose value could not be had: {e.Error.Message}" });
            }
        }

        return NestedPointers.Splice(Arguments.RawMemory(slot).Span, nested, values);
    }

    /// <summary>When set, <see cref="Return{T}"/> keeps the value in this store and the result is a pointer to it.</summary>
    internal (IpyRpcDataStore Store, TimeSpan? TimeToLive, string? Protocol)? ReturnAsPointer { get; set; }

    /// <summary>The call's job and caller: where items and progress reports go (the job's record, after any console output written before them), and who called.</summary>
    internal CallHost? Host { get; set; }

    /// <summary>The caller's flow control for a streaming call; <see langword="null"/> when the caller gave no window (the items are then only bounded by the transport).</summary>
    internal StreamFlow? Flow { get; set; }

    /// <summary>The most items sent in one <c>items</c> message.</summary>
    public const int MaxBatchItems = 256;

    /// <summary>A batch is sent once its items take this many bytes.</summary>
    public const int MaxBatchBytes = 64 * 1024;

    /// <summary>
    /// An <see cref="IProgress{T}"/> whose reports reach the caller live, before the result (a
    /// <c>progress</c> message each). Generated invokers pass it for a function's <see cref="IProgress{T}"/> parameter.
    /// </summary>
    public IProgress<T> Progress<T>(IpyRpcFormatter<T> formatter) => new ProgressReporter<T>(this, formatter);

    /// <summary>
    /// Sends the items of a streaming function to the caller as they are produced, in batches (a
    /// batch goes as soon as the producer stops to wait, or holds <see cref="MaxBatchItems"/> items or
    /// <see cref="MaxBatchBytes"/> bytes), waiting for the caller's credit when it is that far behind.
    /// The enumeration gets the call's cancellation token. The call's result is the number of items.
    /// </summary>
    public async ValueTask ReturnStreamAsync<T>(IAsyncEnumerable<T> items, IpyRpcFormatter<T> formatter)
    {
        int batchLimit = Flow is { } flow ? (int)Math.Clamp(flow.Window / 2, 1, MaxBatchItems) : MaxBatchItems;
        var batch = new ArrayBufferWriter<byte>(4096);
        int count = 0;
        long total = 0;
        await using (IAsyncEnumerator<T> e = items.GetAsyncEnumerator(CancellationToken))
        {
            while (true)
            {
                ValueTask<bool> next = e.MoveNextAsync();
                if (!next.IsCompleted && count > 0)
                {
                    // The producer is waiting for something: what it made so far goes now.
                    await SendBatchAsync(batch, count).ConfigureAwait(false);
                    count = 0;
                }

                bool more;
                try
                {
                    more = await next.ConfigureAwait(false);
                }
                catch (Exception failure) when (count > 0 && !CancellationToken.IsCancellationRequested)
                {
                    // The function failed after items it made since it last paused: they go before its error.
                    await SendBatchAsync(batch, count).ConfigureAwait(false);
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
                    throw;
                }

                if (!more) break;
                if (OutputSerialization == Serialization.Json && count > 0) batch.Write(","u8);
                Encode(batch, e.Current, formatter, "An item of the stream");
                count++;
                total++;
                if (count >= batchLimit || batch.WrittenCount >= MaxBatchBytes)
                {
                    await SendBatchAsync(batch, count).ConfigureAwait(false);
                    count = 0;
                }
            }
        }

        if (count > 0) await SendBatchAsync(batch, count).ConfigureAwait(false);
        ReturnAsPointer = null; // a stream's result is its item count: the items went to the caller
        Return(total, Formatters.Int64);
    }

    private async ValueTask SendBatchAsync(ArrayBufferWriter<byte> batch, int count)
    {
        if (Flow is { } flow) await flow.TakeAsync(count, CancellationToken).ConfigureAwait(false);
        byte[] framed;
        if (OutputSerialization == Serialization.Json)
        {
            framed = new byte[batch.WrittenCount + 2];
            framed[0] = (byte)'[';
            batch.WrittenSpan.CopyTo(framed.AsSpan(1));
            framed[^1] = (byte)']';
        }
        else
        {
            var header = new ArrayBufferWriter<byte>(5);
            var w = new MessagePackWriter(header);
            w.WriteArrayHeader(count);
            framed = new byte[header.WrittenCount + batch.WrittenCount];
            header.WrittenSpan.CopyTo(framed);
            batch.WrittenSpan.CopyTo(framed.AsSpan(header.WrittenCount));
        }

        batch.Clear();
        Host?.Data(Jobs.JobData.Items, Jobs.JobData.Encode(OutputSerialization, framed));
    }

    private void Encode<T>(IBufferWriter<byte> buffer, T value, IpyRpcFormatter<T> formatter, string what)
    {
        try
        {
            formatter.Write(buffer, value, OutputSerialization);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or InvalidOperationException or ArgumentException)
        {
            throw new ResultSerializationException($"{what} of {Function.Name} could not be serialized as {MessageCodec.SerializationName(OutputSerialization)}: {e.Message}", e);
        }
    }

    private sealed class ProgressReporter<T>(IpyRpcInvocation call, IpyRpcFormatter<T> formatter) : IProgress<T>
    {
        public void Report(T value)
        {
            var buffer = new ArrayBufferWriter<byte>(64);
            call.Encode(buffer, value, formatter, "A progress report");
            call.Host?.Data(Jobs.JobData.Progress, Jobs.JobData.Encode(call.OutputSerialization, buffer.WrittenSpan));
        }
    }

    /// <summary>Sets the result.</summary>
    /// <exception cref="ResultSerializationException">The value could not be written (not the function's fault, so not its exception).</exception>
    public void Return<T>(T value, IpyRpcFormatter<T> formatter)
    {
        if (ReturnAsPointer is { } keep)
        {
            RemotePointer<T> pointer;
            try
            {
                pointer = keep.Store.Hold(value, formatter, keep.TimeToLive, keep.Protocol);
            }
            catch (Exception e) when (e is IpyRpcSerializationException or InvalidOperationException or ArgumentException)
            {
                // Sizing the value encodes it: a value that cannot be written is the server's problem, as for a plain result.
                throw new ResultSerializationException($"The result of {Function.Name} could not be kept for a pointer: {e.Message}", e);
            }

            Result = Jobs.JobCodec.Encode(pointer.ToMap(), OutputSerialization);
            HasResult = true;
            return;
        }

        var buffer = new ByteBuffer(SizeHint.Of(value), pooling: true, compact: true);
        Encode(buffer, value, formatter, "The result");
        Result = buffer.Detach();
        ResultPool = buffer.Pooled;
        HasResult = true;
    }

    /// <summary>Marks a call to a <see langword="void"/> method as complete (its result is nil/null).</summary>
    public void ReturnVoid()
    {
        Result = OutputSerialization == Serialization.Json ? "null"u8.ToArray() : [0xc0];
        HasResult = true;
    }

    /// <summary>Sets the result of a synchronous function and completes: what a generated invoker returns.</summary>
    /// <exception cref="ResultSerializationException">The value could not be written.</exception>
    public ValueTask Returned<T>(T value, IpyRpcFormatter<T> formatter)
    {
        Return(value, formatter);
        return default;
    }

    /// <summary>Completes a call to a synchronous <see langword="void"/> method: what a generated invoker returns.</summary>
    public ValueTask ReturnedVoid()
    {
        ReturnVoid();
        return default;
    }

    /// <summary>Sets the result once <paramref name="task"/> has it (a generated invoker of an <see langword="async"/> function returns this).</summary>
    public async ValueTask ReturnAsync<T>(Task<T> task, IpyRpcFormatter<T> formatter) => Return(await task.ConfigureAwait(false), formatter);

    /// <summary>Sets the result once <paramref name="task"/> has it.</summary>
    public async ValueTask ReturnAsync<T>(ValueTask<T> task, IpyRpcFormatter<T> formatter) => Return(await task.ConfigureAwait(false), formatter);

    /// <summary>Completes the call once <paramref name="task"/> has (a function returning <see cref="Task"/>).</summary>
    public async ValueTask ReturnVoidAsync(Task task)
    {
        await task.ConfigureAwait(false);
        ReturnVoid();
    }

    /// <summary>Completes the call once <paramref name="task"/> has (a function returning <see cref="ValueTask"/>).</summary>
    public async ValueTask ReturnVoidAsync(ValueTask task)
    {
        await task.ConfigureAwait(false);
        ReturnVoid();
    }
}

/// <summary>A function's result could not be serialized: an internal error, reported as such rather than as the function's exception.</summary>
public sealed class ResultSerializationException(string message, Exception inner) : Exception(message, inner);
