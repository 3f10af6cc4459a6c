using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>What a stored value's formatter knows about the value's rows, for pointers' partial fetches.</summary>
internal interface IRowSlicer<T>
{
    /// <summary>The value's shape (its first dimension is the rows).</summary>
    IReadOnlyList<long> Shape(T value);

    /// <summary>The raw size of its elements in bytes.</summary>
    long Bytes(T value);

    /// <summary>Rows <c>[start, stop)</c>, already clamped.</summary>
    T Slice(T value, long start, long stop);
}

/// <summary>
/// <see cref="Tensor{T}"/> of a primitive number type as an ndarray: in MessagePack the same
/// extension as rectangular arrays (<see cref="WireExtensions.NdArray"/>: dtype, shape, one raw
/// little-endian block in row-major order, written straight from the tensor into the message); in
/// JSON the seeds' ndarray object with the elements flat in <c>data</c>. Reads also take a
/// one-dimensional numeric array (a rank-1 tensor) and nested JSON arrays.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
public sealed class TensorFormatter<T> : IpyRpcFormatter<Tensor<T>?>, IRowSlicer<Tensor<T>?>
    where T : unmanaged
{
    private readonly byte[] _dtype;
    private readonly string _dtypeText;
    private readonly IpyRpcFormatter<T> _element;

    /// <summary>Creates the formatter for tensors of numpy dtype <paramref name="dtype"/>.</summary>
    public TensorFormatter(string dtype, IpyRpcFormatter<T> element)
    {
        _dtypeText = dtype;
        _dtype = Encoding.ASCII.GetBytes(dtype);
        _element = element;
    }

    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, Tensor<T>? value)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }

        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Tensors are written as little-endian blocks; big-endian hosts are not supported.");
        ReadOnlySpan<nint> lengths = value.Lengths;
        long bytes = value.FlattenedLength * Marshal.SizeOf<T>();
        int head = 1 + _dtype.Length + 1 + 4 * lengths.Length;
        if (bytes + head > int.MaxValue) throw new IpyRpcSerializationException($"A tensor of {bytes} bytes is larger than one message value can be.");
        writer.WriteExtensionHeader(WireExtensions.NdArray, (uint)(head + bytes));
        Span<byte> span = writer.Output.GetSpan(head);
        span[0] = (byte)_dtype.Length;
        _dtype.CopyTo(span[1..]);
        span[1 + _dtype.Length] = (byte)lengths.Length;
        for (int d = 0; d < lengths.Length; d++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(span.Slice(2 + _dtype.Length + 4 * d), checked((uint)lengths[d]));
        }

        writer.Output.Advance(head);
        Span<byte> raw = writer.Output.GetSpan((int)bytes)[..(int)bytes];
        value.FlattenTo(MemoryMarshal.Cast<byte, T>(raw)); // the elements go straight into the message buffer
        writer.Output.Advance((int)bytes);
    }

    /// <inheritdoc/>
    public override Tensor<T>? Read(ref MessagePackReader reader)
    {
        if (reader.TryReadNil()) return null;
        int start = reader.Position;
        if (reader.NextType != MessagePackType.Extension)
        {
            throw reader.Error($"Expected a tensor (an ndarray) but found {MessagePackReader.Describe(reader.NextType)}");
        }

        ReadOnlySpan<byte> data = reader.ReadExtension(out sbyte type);
        if (type is not (WireExtensions.NdArray or WireExtensions.NumericArray) || data.Length < 1 || data.Length < 1 + data[0])
        {
            throw new MessagePackSerializationException($"Expected a tensor (an ndarray, extension {WireExtensions.NdArray}) but found extension {type}", start);
        }

        ReadOnlySpan<byte> dtype = data.Slice(1, data[0]);
        if (!dtype.SequenceEqual(_dtype))
        {
            throw new MessagePackSerializationException($"Expected a tensor of dtype {_dtypeText} but found dtype {Encoding.ASCII.GetString(dtype)}", start);
        }

        int offset = 1 + data[0];
        nint[] lengths;
        if (type == WireExtensions.NumericArray)
        {
            lengths = [(data.Length - offset) / Marshal.SizeOf<T>()];
        }
        else
        {
            if (data.Length < offset + 1) throw new MessagePackSerializationException("The ndarray extension is too short to hold its rank", start);
            int rank = data[offset++];
            if (rank == 0 || data.Length < offset + 4 * rank) throw new MessagePackSerializationException("The ndarray extension is too short to hold its shape", start);
            lengths = new nint[rank];
            for (int d = 0; d < rank; d++) lengths[d] = (nint)System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(offset + 4 * d));
            offset += 4 * rank;
        }

        ReadOnlySpan<byte> raw = data[offset..];
        long count = 1;
        foreach (nint n in lengths) count = checked(count * n);
        if (count * Marshal.SizeOf<T>() != raw.Length)
        {
            throw new MessagePackSerializationException($"A tensor of shape ({string.Join(", ", lengths)}) and dtype {_dtypeText} needs {count * Marshal.SizeOf<T>()} bytes but has {raw.Length}", start);
        }

        return Tensor.Create(MemoryMarshal.Cast<byte, T>(raw).ToArray(), lengths);
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, Tensor<T>? value)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartObject();
        writer.WriteString("type"u8, "ndarray"u8);
        writer.WriteString("dtype"u8, _dtypeText);
        writer.WriteStartArray("shape"u8);
        foreach (nint n in value.Lengths) writer.WriteNumberValue((long)n);
        writer.WriteEndArray();
        writer.WriteStartArray("data"u8);
        T[] flat = new T[value.FlattenedLength];
        value.FlattenTo(flat);
        foreach (T v in flat) _element.Write(writer, v);
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    /// <inheritdoc/>
    public override Tensor<T>? Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null) return null;
        using JsonDocument document = JsonDocument.ParseValue(ref reader);
        JsonElement root = document.RootElement;
        JsonElement data = root;
        List<nint>? shape = null;
        if (root.ValueKind == JsonValueKind.Object)
        {
            if (root.TryGetProperty("dtype", out JsonElement d) && d.GetString() is { } given && given.TrimStart('<', '>', '|', '=') != _dtypeText.TrimStart('<', '>', '|', '='))
            {
                throw new IpyRpcSerializationException($"Expected a tensor of dtype {_dtypeText} but found dtype {given}");
            }

            if (!root.TryGetProperty("data", out data)) throw new IpyRpcSerializationException("An ndarray object needs a \"data\" member");
            if (root.TryGetProperty("shape", out JsonElement s)) shape = [.. s.EnumerateArray().Select(e => (nint)e.GetInt64())];
        }

        if (data.ValueKind != JsonValueKind.Array) throw new IpyRpcSerializationException("A tensor's data is an array (flat with a shape, or nested).");
        var values = new List<T>();
        var nested = new List<nint>();
        Flatten(data, 0, nested, values);
        nint[] lengths = shape is null ? [.. nested] : [.. shape];
        long count = 1;
        foreach (nint n in lengths) count *= n;
        if (count != values.Count) throw new IpyRpcSerializationException($"A tensor of shape ({string.Join(", ", lengths)}) needs {count} values but has {values.Count}.");
        return Tensor.Create(values.ToArray(), lengths);
    }

    private void Flatten(JsonElement array, int depth, List<nint> shape, List<T> values)
    {
        int length = array.GetArrayLength();
        if (shape.Count == depth) shape.Add(length);
        else if (shape[depth] != length) throw new IpyRpcSerializationException("A tensor's nested data must be rectangular.");
        foreach (JsonElement e in array.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                Flatten(e, depth + 1, shape, values);
                continue;
            }

            var r = new Utf8JsonReader(Encoding.UTF8.GetBytes(e.GetRawText()));
            r.Read();
            values.Add(_element.Read(ref r));
        }
    }

    IReadOnlyList<long> IRowSlicer<Tensor<T>?>.Shape(Tensor<T>? value) => value is null ? [] : [.. value.Lengths.ToArray().Select(n => (long)n)];

    long IRowSlicer<Tensor<T>?>.Bytes(Tensor<T>? value) => value is null ? 0 : value.FlattenedLength * Marshal.SizeOf<T>();

    Tensor<T>? IRowSlicer<Tensor<T>?>.Slice(Tensor<T>? value, long start, long stop)
    {
        if (value is null) return null;
        var ranges = new NRange[value.Rank];
        ranges[0] = new NRange((nint)start, (nint)stop);
        for (int d = 1; d < ranges.Length; d++) ranges[d] = NRange.All;
        return value.Slice(ranges);
    }
}
