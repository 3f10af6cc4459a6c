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
        _slots = arguments.Bind(function.Descriptor);
    }

    /// <summary>The function being called.</summary>
    public IpyRpcFunction Function { get; }

    /// <summary>The arguments as they arrived.</summary>
    public CallArguments Arguments { get; }

    /// <summary>How the result is encoded.</summary>
    public Serialization OutputSerialization { get; }

    /// <summary>The caller's connection: who called, from where. A function asks for it with an <see cref="IpyRpcConnection"/> parameter.</summary>
    public IpyRpcConnection Connection => _connection ??= ResolveConnection?.Invoke() ?? new IpyRpcConnection("none", null);

    internal Func<IpyRpcConnection>? ResolveConnection { get; set; }

    private IpyRpcConnection? _connection;

    /// <summary>Cancelled when the caller cancels, the call times out, or the server stops.</summary>
    public CancellationToken CancellationToken { get; internal set; }

    /// <summary>The encoded result, once <see cref="Return{T}"/> or <see cref="ReturnVoid"/> ran.</summary>
    public ReadOnlyMemory<byte> Result { get; private set; }

    /// <summary>Whether the invocation has a result.</summary>
    public bool HasResult { get; private set; }

    /// <summary>The service instance, for instance methods.</summary>
    public TService Target<TService>() where TService : class
        => Function.Target as TService ?? throw new InvalidOperationException($"{Function.Name} is an instance method of {typeof(TService).Name}; register an instance with server.Register(instance).");

    /// <summary>The required argument at <paramref name="index"/>.</summary>
    public T Arg<T>(int index, IpyRpcFormatter<T> formatter)
    {
        (int Offset, int Length) slot = _slots[index];
        if (slot.Offset < 0)
        {
            ParameterDescriptor p = Function.Descriptor.Parameters[index];
            throw new ArgumentBindingException(new RemoteError
            {
                Code = ErrorCodes.InvalidArguments,
                Parameter = p.Name,
                Message = $"{Function.Name} is missing the required argument '{p.Name}' ({p.Type}). Signature: {Function.Descriptor.Signature}",
            });
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
            return Arguments.Decode(slot, formatter);
        }
        catch (Exception e) when (e is IpyRpcSerializationException or JsonException or FormatException or OverflowException or InvalidOperationException)
        {
            ParameterDescriptor p = Function.Descriptor.Parameters[index];
            throw new ArgumentBindingException(new RemoteError
            {
                Code = ErrorCodes.InvalidArguments,
                Parameter = p.Name,
                Message = $"Argument '{p.Name}' of {Function.Name} must be {p.Type}: {e.Message}",
            });
        }
    }

    /// <summary>Sets the result.</summary>
    /// <exception cref="ResultSerializationException">The value could not be written (not the function's fault, so not its exception).</exception>
    public void Return<T>(T value, IpyRpcFormatter<T> formatter)
    {
        var buffer = new ArrayBufferWriter<byte>(SizeHint.Of(value));
        try
        {
            if (OutputSerialization == Serialization.Json)
            {
                using var writer = new Utf8JsonWriter(buffer);
                formatter.Write(writer, value);
            }
            else
            {
                var writer = new MessagePackWriter(buffer);
                formatter.Write(ref writer, value);
            }
        }
        catch (Exception e) when (e is IpyRpcSerializationException or InvalidOperationException or ArgumentException)
        {
            throw new ResultSerializationException($"The result of {Function.Name} could not be serialized as {MessageCodec.SerializationName(OutputSerialization)}: {e.Message}", e);
        }

        Result = buffer.WrittenMemory;
        HasResult = true;
    }

    /// <summary>Marks a call to a <see langword="void"/> method as complete (its result is nil/null).</summary>
    public void ReturnVoid()
    {
        Result = OutputSerialization == Serialization.Json ? "null"u8.ToArray() : [0xc0];
        HasResult = true;
    }
}

/// <summary>A function's result could not be serialized: an internal error, reported as such rather than as the function's exception.</summary>
public sealed class ResultSerializationException(string message, Exception inner) : Exception(message, inner);
