using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// Rectangular arrays of a primitive number type (<c>double[,]</c>, <c>int[,,]</c>): numpy's
/// n-dimensional arrays. In MessagePack one extension value (type <see cref="WireExtensions.NdArray"/>)
/// holds the dtype, the shape and the elements as one raw little-endian block in row-major (C) order,
/// written from and read into the array's own memory with no per-element work. In JSON the seeds'
/// ndarray shape: <c>{"type": "ndarray", "dtype": "&lt;f8", "shape": [2, 3], "data": [[...], [...]]}</c>;
/// on input <c>data</c> may also be flat, and plain nested arrays are accepted.
/// </summary>
/// <typeparam name="TArray">The array type: <c>T[,]</c> or <c>T[,,]</c>.</typeparam>
/// <typeparam name="T">The element type.</typeparam>
public sealed class NdArrayFormatter<TArray, T> : IpyRpcFormatter<TArray?>
    where TArray : class
    where T : unmanaged
{
    private readonly byte[] _dtype;
    private readonly string _dtypeText;
    private readonly IpyRpcFormatter<T> _element;
    private readonly int _rank;
    private readonly Func<int[], TArray> _create;

    /// <summary>Creates the formatter for arrays of <paramref name="rank"/> dimensions of numpy dtype <paramref name="dtype"/>; <paramref name="create"/> makes an array of a shape (no reflection, so it stays AOT-friendly).</summary>
    public NdArrayFormatter(string dtype, int rank, IpyRpcFormatter<T> element, Func<int[], TArray> create)
    {
        _create = create;
        _dtypeText = dtype;
        _dtype = Encoding.ASCII.GetBytes(dtype);
        _rank = rank;
        _element = element;
    }

    private static Span<T> Elements(Array array) => MemoryMarshal.CreateSpan(ref Unsafe.As<byte, T>(ref MemoryMarshal.GetArrayDataReference(array)), array.Length);

    private TArray Create(ReadOnlySpan<int> shape)
    {
        long total = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new IpyRpcSerializationException($"An ndarray dimension of {d} is not a size.");
            total *= d;
            if (total > Array.MaxLength) throw new IpyRpcSerializationException("The ndarray has more elements than an array can hold.");
        }

        TArray array = _create(shape.ToArray());
        if (((Array)(object)array).Rank != _rank) throw new InvalidOperationException($"The factory made an array of {((Array)(object)array).Rank} dimensions, not {_rank}.");
        return array;
    }

    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, TArray? value)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }

        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("Numeric arrays are written as little-endian blocks; big-endian hosts are not supported.");
        var array = (Array)(object)value;
        ReadOnlySpan<byte> raw = MemoryMarshal.AsBytes((ReadOnlySpan<T>)Elements(array));
        int head = 1 + _dtype.Length + 1 + 4 * _rank;
        writer.WriteExtensionHeader(WireExtensions.NdArray, (uint)(head + raw.Length));
        Span<byte> span = writer.Output.GetSpan(head);
        span[0] = (byte)_dtype.Length;
        _dtype.CopyTo(span[1..]);
        span[1 + _dtype.Length] = (byte)_rank;
        for (int d = 0; d < _rank; d++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(span.Slice(2 + _dtype.Length + 4 * d), (uint)array.GetLength(d));
        }

        writer.Output.Advance(head);
        writer.WriteRaw(raw);
    }

    /// <inheritdoc/>
    public override TArray? Read(ref MessagePackReader reader)
    {
        if (reader.TryReadNil()) return null;
        int start = reader.Position;
        if (reader.NextType == MessagePackType.Array)
        {
            // Nested arrays of numbers (a client without numpy): rectangular, rank deep.
            var values = new List<T>();
            var nestedShape = new int[_rank];
            try
            {
                ReadNested(ref reader, 0, nestedShape, new bool[_rank], values);
                return Fill(nestedShape, values);
            }
            catch (IpyRpcSerializationException e) when (e is not MessagePackSerializationException)
            {
                throw new MessagePackSerializationException(e.Message, start);
            }
        }

        if (reader.NextType != MessagePackType.Extension)
        {
            throw reader.Error($"Expected a {_rank}-dimensional array of numbers (nested arrays, or an ndarray) but found {MessagePackReader.Describe(reader.NextType)}");
        }

        ReadOnlySpan<byte> data = reader.ReadExtension(out sbyte type);
        if (type != WireExtensions.NdArray)
        {
            throw new MessagePackSerializationException($"Expected an n-dimensional array (extension {WireExtensions.NdArray}) but found extension {type}", start);
        }

        if (data.Length < 2 || data.Length < 2 + data[0])
        {
            throw new MessagePackSerializationException("The ndarray extension is too short to hold its dtype and rank", start);
        }

        ReadOnlySpan<byte> dtype = data.Slice(1, data[0]);
        if (!dtype.SequenceEqual(_dtype))
        {
            throw new MessagePackSerializationException($"Expected an ndarray of dtype {_dtypeText} but found dtype {Encoding.ASCII.GetString(dtype)}", start);
        }

        int rank = data[1 + data[0]];
        if (rank != _rank)
        {
            throw new MessagePackSerializationException($"Expected an ndarray of {_rank} dimensions but found {rank}", start);
        }

        int offset = 2 + data[0];
        if (data.Length < offset + 4 * rank) throw new MessagePackSerializationException("The ndarray extension is too short to hold its shape", start);
        Span<int> shape = stackalloc int[rank];
        for (int d = 0; d < rank; d++)
        {
            uint n = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(offset + 4 * d));
            if (n > int.MaxValue) throw new MessagePackSerializationException($"An ndarray dimension of {n} is too large", start);
            shape[d] = (int)n;
        }

        ReadOnlySpan<byte> raw = data[(offset + 4 * rank)..];
        TArray result;
        try
        {
            result = Create(shape);
        }
        catch (IpyRpcSerializationException e) when (e is not MessagePackSerializationException)
        {
            throw new MessagePackSerializationException(e.Message, start);
        }

        Span<byte> target = MemoryMarshal.AsBytes(Elements((Array)(object)result));
        if (raw.Length != target.Length)
        {
            throw new MessagePackSerializationException($"An ndarray of shape ({string.Join(", ", shape.ToArray())}) and dtype {_dtypeText} needs {target.Length} bytes but has {raw.Length}", start);
        }

        raw.CopyTo(target);
        return result;
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, TArray? value)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        var array = (Array)(object)value;
        writer.WriteStartObject();
        writer.WriteString("type"u8, "ndarray"u8);
        writer.WriteString("dtype"u8, _dtypeText);
        writer.WriteStartArray("shape"u8);
        for (int d = 0; d < _rank; d++) writer.WriteNumberValue(array.GetLength(d));
        writer.WriteEndArray();
        writer.WritePropertyName("data"u8);
        ReadOnlySpan<T> elements = Elements(array);
        int index = 0;
        WriteNested(writer, array, 0, elements, ref index);
        writer.WriteEndObject();
    }

    private void WriteNested(Utf8JsonWriter writer, Array array, int dimension, ReadOnlySpan<T> elements, ref int index)
    {
        writer.WriteStartArray();
        int length = array.GetLength(dimension);
        for (int i = 0; i < length; i++)
        {
            if (dimension == _rank - 1) _element.Write(writer, elements[index++]);
            else WriteNested(writer, array, dimension + 1, elements, ref index);
        }

        writer.WriteEndArray();
    }

    /// <inheritdoc/>
    public override TArray? Read(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.StartArray:
            {
                var values = new List<T>();
                var shape = new int[_rank];
                ReadNested(ref reader, 0, shape, new bool[_rank], values);
                return Fill(shape, values);
            }

            case JsonTokenType.StartObject:
            {
                int[]? shape = null;
                int[]? nestedShape = null;
                List<T>? values = null;
                while (true)
                {
                    JsonRead.Next(ref reader);
                    if (reader.TokenType == JsonTokenType.EndObject) break;
                    string? name = reader.GetString();
                    JsonRead.Next(ref reader);
                    switch (name)
                    {
                        case "shape":
                            JsonRead.Expect(ref reader, JsonTokenType.StartArray, "the ndarray's shape");
                            var dims = new List<int>();
                            for (JsonRead.Next(ref reader); reader.TokenType != JsonTokenType.EndArray; JsonRead.Next(ref reader)) dims.Add(reader.GetInt32());
                            shape = [.. dims];
                            break;
                        case "dtype":
                            string? dtype = reader.GetString();
                            if (dtype is not null && dtype.TrimStart('<', '>', '|', '=') != _dtypeText.TrimStart('<', '>', '|', '='))
                            {
                                throw new IpyRpcSerializationException($"Expected an ndarray of dtype {_dtypeText} but found dtype {dtype}");
                            }

                            break;
                        case "data":
                            JsonRead.Expect(ref reader, JsonTokenType.StartArray, "the ndarray's data");
                            values = [];
                            Utf8JsonReader probe = reader; // a copy: looks at the first element without moving the reader
                            JsonRead.Next(ref probe);
                            if (_rank > 1 && probe.TokenType == JsonTokenType.StartArray)
                            {
                                nestedShape = new int[_rank];
                                ReadNested(ref reader, 0, nestedShape, new bool[_rank], values);
                            }
                            else
                            {
                                for (JsonRead.Next(ref reader); reader.TokenType != JsonTokenType.EndArray; JsonRead.Next(ref reader)) values.Add(_element.Read(ref reader));
                            }

                            break;
                        default:
                            reader.Skip();
                            break;
                    }
                }

                if (values is null) throw new IpyRpcSerializationException("An ndarray object needs a \"data\" member");
                shape ??= nestedShape;
                if (shape is null || shape.Length != _rank) throw new IpyRpcSerializationException($"Expected an ndarray of {_rank} dimensions but its shape is [{string.Join(", ", shape ?? [])}]");
                return Fill(shape, values);
            }

            default:
                throw JsonRead.Unexpected(ref reader, $"an ndarray of {_rank} dimensions");
        }
    }

    private void ReadNested(ref MessagePackReader reader, int dimension, int[] shape, bool[] seen, List<T> values)
    {
        int count = reader.ReadArrayHeader();
        for (int i = 0; i < count; i++)
        {
            if (dimension == _rank - 1) values.Add(_element.Read(ref reader));
            else ReadNested(ref reader, dimension + 1, shape, seen, values);
        }

        Seen(dimension, count, shape, seen);
    }

    private static void Seen(int dimension, int count, int[] shape, bool[] seen)
    {
        if (!seen[dimension])
        {
            shape[dimension] = count;
            seen[dimension] = true;
        }
        else if (shape[dimension] != count)
        {
            throw new IpyRpcSerializationException($"The ndarray's rows are not all the same length ({shape[dimension]} and {count}): it must be rectangular.");
        }
    }

    // An array nested to the rank; every row of a dimension must have the same length.
    private void ReadNested(ref Utf8JsonReader reader, int dimension, int[] shape, bool[] seen, List<T> values)
    {
        int count = 0;
        for (JsonRead.Next(ref reader); reader.TokenType != JsonTokenType.EndArray; JsonRead.Next(ref reader))
        {
            if (dimension == _rank - 1)
            {
                values.Add(_element.Read(ref reader));
            }
            else
            {
                JsonRead.Expect(ref reader, JsonTokenType.StartArray, $"a row of dimension {dimension + 2}");
                ReadNested(ref reader, dimension + 1, shape, seen, values);
            }

            count++;
        }

        Seen(dimension, count, shape, seen);
    }

    private TArray Fill(int[] shape, List<T> values)
    {
        TArray result = Create(shape);
        Span<T> target = Elements((Array)(object)result);
        if (target.Length != values.Count)
        {
            throw new IpyRpcSerializationException($"An ndarray of shape [{string.Join(", ", shape)}] needs {target.Length} values but has {values.Count} (it must be rectangular).");
        }

        CollectionsMarshal.AsSpan(values).CopyTo(target);
        return result;
    }
}
