using System.Text.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// Reads and writes one .NET type in both wire serializations. The generator emits one for each
/// user type an exported function takes or returns; the runtime has them for the built-in types.
/// This untyped base is what dynamic calls use; typed code uses <see cref="IpyRpcFormatter{T}"/>.
/// </summary>
public abstract class IpyRpcFormatter
{
    /// <summary>The type this formatter handles.</summary>
    public abstract Type Type { get; }

    /// <summary>Writes a boxed value as MessagePack.</summary>
    public abstract void WriteObject(ref MessagePackWriter writer, object? value);

    /// <summary>Reads a value as MessagePack and boxes it.</summary>
    public abstract object? ReadObject(ref MessagePackReader reader);

    /// <summary>Writes a boxed value as JSON.</summary>
    public abstract void WriteObject(Utf8JsonWriter writer, object? value);

    /// <summary>Reads a value as JSON and boxes it. The reader is on the value's first token.</summary>
    public abstract object? ReadObject(ref Utf8JsonReader reader);
}

/// <summary>Reads and writes <typeparamref name="T"/> as MessagePack and as JSON.</summary>
/// <remarks>
/// JSON reads follow System.Text.Json's converter convention: the reader is on the first token
/// of the value when <see cref="Read(ref Utf8JsonReader)"/> is called and on its last token after.
/// </remarks>
public abstract class IpyRpcFormatter<T> : IpyRpcFormatter
{
    /// <inheritdoc/>
    public sealed override Type Type => typeof(T);

    /// <summary>Writes <paramref name="value"/> as MessagePack.</summary>
    public abstract void Write(ref MessagePackWriter writer, T value);

    /// <summary>Reads a <typeparamref name="T"/> from MessagePack.</summary>
    public abstract T Read(ref MessagePackReader reader);

    /// <summary>Writes <paramref name="value"/> as JSON.</summary>
    public abstract void Write(Utf8JsonWriter writer, T value);

    /// <summary>Reads a <typeparamref name="T"/> from JSON; the reader is on the value's first token.</summary>
    public abstract T Read(ref Utf8JsonReader reader);

    /// <inheritdoc/>
    public sealed override void WriteObject(ref MessagePackWriter writer, object? value) => Write(ref writer, Cast(value));

    /// <inheritdoc/>
    public sealed override object? ReadObject(ref MessagePackReader reader) => Read(ref reader);

    /// <inheritdoc/>
    public sealed override void WriteObject(Utf8JsonWriter writer, object? value) => Write(writer, Cast(value));

    /// <inheritdoc/>
    public sealed override object? ReadObject(ref Utf8JsonReader reader) => Read(ref reader);

    private static T Cast(object? value) => value is T t ? t
        : value is null && default(T) is null ? default!
        : throw new IpyRpcSerializationException($"A value of type {value?.GetType().Name ?? "null"} cannot be written as {TypeNames.Display(typeof(T))}.");
}

/// <summary>Encoding a value in the serialization chosen for a call, in one place.</summary>
public static class IpyRpcFormatterExtensions
{
    // This thread's JSON writer while no write holds it (a write nested in another gets one of its own); between
    // writes it points at a buffer nothing writes to, so it keeps no value's bytes alive.
    [ThreadStatic] private static Utf8JsonWriter? t_json;
    private static readonly System.Buffers.ArrayBufferWriter<byte> Parked = new(1);

    /// <summary>Writes <paramref name="value"/> to <paramref name="output"/> as <paramref name="serialization"/> (JSON or MessagePack).</summary>
    public static void Write<T>(this IpyRpcFormatter<T> formatter, System.Buffers.IBufferWriter<byte> output, T value, Serialization serialization)
    {
        if (serialization == Serialization.Json)
        {
            Utf8JsonWriter writer = t_json ?? new Utf8JsonWriter(output, global::IpyRpc.Formatting.Json.JsonWire.Options);
            t_json = null;
            writer.Reset(output);
            try
            {
                formatter.Write(writer, value);
                writer.Flush();
            }
            finally
            {
                writer.Reset(Parked);
                t_json = writer;
            }
        }
        else
        {
            var writer = new MessagePackWriter(output);
            formatter.Write(ref writer, value);
        }
    }
}
