using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// Arrays of a primitive number type. In MessagePack they travel as one extension value
/// (type <see cref="WireExtensions.NumericArray"/>) holding the numpy-style dtype and the raw
/// little-endian bytes, so a 100 MB array is one copy and not a hundred million values. A plain
/// MessagePack array of numbers is accepted on input too. In JSON they are plain arrays, and the
/// seed's <c>{"type": "ndarray", "dtype": "f8", "shape": [n], "data": [...]}</c> is accepted.
/// </summary>
public sealed class NumericArrayFormatter<T> : IpyRpcFormatter<T[]?>
    where T : unmanaged
{
    private readonly byte[] _dtype;
    private readonly string _dtypeText;
    private readonly IpyRpcFormatter<T> _element;

    /// <summary>Creates the formatter for the numpy dtype <paramref name="dtype"/> (for example <c>&lt;f8</c>).</summary>
    public NumericArrayFormatter(string dtype, IpyRpcFormatter<T> element)
    {
        _dtypeText = dtype;
        _dtype = Encoding.ASCII.GetBytes(dtype);
        _element = element;
    }

    /// <summary>The numpy dtype this formatter writes.</summary>
    public string DType => _dtypeText;

    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, T[]? value)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }

        ReadOnlySpan<byte> raw = MemoryMarshal.AsBytes(value.AsSpan());
        writer.WriteExtensionHeader(WireExtensions.NumericArray, (uint)(1 + _dtype.Length + raw.Length));
        Span<byte> head = writer.Output.GetSpan(1 + _dtype.Length);
        head[0] = (byte)_dtype.Length;
        _dtype.CopyTo(head[1..]);
        writer.Output.Advance(1 + _dtype.Length);
        if (BitConverter.IsLittleEndian)
        {
            writer.WriteRaw(raw);
        }
        else
        {
            throw new PlatformNotSupportedException("Numeric arrays are written as little-endian blocks; big-endian hosts are not supported.");
        }
    }

    /// <inheritdoc/>
    public override T[]? Read(ref MessagePackReader reader)
    {
        if (reader.TryReadNil())
        {
            return null;
        }

        if (reader.NextType == MessagePackType.Array)
        {
            int n = reader.ReadArrayHeader();
            var result = new T[n];
            for (int i = 0; i < n; i++)
            {
                result[i] = _element.Read(ref reader);
            }

            return result;
        }

        int start = reader.Position;
        if (reader.NextType != MessagePackType.Extension)
        {
            throw reader.Error($"Expected an array of numbers but found {MessagePackReader.Describe(reader.NextType)}");
        }

        ReadOnlySpan<byte> data = reader.ReadExtension(out sbyte type);
        if (type != WireExtensions.NumericArray)
        {
            throw new MessagePackSerializationException($"Expected a numeric array (extension {WireExtensions.NumericArray}) but found extension {type}", start);
        }

        if (data.Length < 1 || data.Length < 1 + data[0])
        {
            throw new MessagePackSerializationException("Numeric array extension is too short to hold its dtype", start);
        }

        ReadOnlySpan<byte> dtype = data.Slice(1, data[0]);
        if (!dtype.SequenceEqual(_dtype))
        {
            throw new MessagePackSerializationException($"Expected an array of dtype {_dtypeText} but found dtype {Encoding.ASCII.GetString(dtype)}", start);
        }

        ReadOnlySpan<byte> raw = data[(1 + data[0])..];
        int size = Marshal.SizeOf<T>();
        if (raw.Length % size != 0)
        {
            throw new MessagePackSerializationException($"Numeric array of dtype {_dtypeText} has {raw.Length} bytes, not a multiple of {size}", start);
        }

        T[] array = GC.AllocateUninitializedArray<T>(raw.Length / size);
        raw.CopyTo(MemoryMarshal.AsBytes(array.AsSpan()));
        return array;
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, T[]? value)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartArray();
        foreach (T item in value)
        {
            _element.Write(writer, item);
        }

        writer.WriteEndArray();
    }

    /// <inheritdoc/>
    public override T[]? Read(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.StartArray:
                return ReadJsonArray(ref reader);
            case JsonTokenType.StartObject:
                T[]? data = null;
                while (true)
                {
                    JsonRead.Next(ref reader);
                    if (reader.TokenType == JsonTokenType.EndObject)
                    {
                        return data ?? throw new IpyRpcSerializationException("An ndarray object needs a \"data\" member");
                    }

                    string? name = reader.GetString();
                    JsonRead.Next(ref reader);
                    if (name == "data")
                    {
                        JsonRead.Expect(ref reader, JsonTokenType.StartArray, "the ndarray's data array");
                        data = ReadJsonArray(ref reader);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }

            default:
                throw JsonRead.Unexpected(ref reader, "an array of numbers");
        }
    }

    private T[] ReadJsonArray(ref Utf8JsonReader reader)
    {
        var list = new List<T>();
        while (true)
        {
            JsonRead.Next(ref reader);
            if (reader.TokenType == JsonTokenType.EndArray)
            {
                return list.ToArray();
            }

            list.Add(_element.Read(ref reader));
        }
    }
}

/// <summary>The MessagePack extension types IpyRpc defines on the wire.</summary>
public static class WireExtensions
{
    /// <summary>
    /// A one-dimensional array of numbers: one byte N, N ASCII bytes of numpy dtype
    /// (<c>&lt;f8</c>, <c>&lt;i4</c>, …), then the elements as raw little-endian bytes.
    /// </summary>
    public const sbyte NumericArray = 1;

    /// <summary>
    /// An n-dimensional array of numbers in row-major (C) order: one byte N, N ASCII bytes of numpy dtype,
    /// one byte of rank R, R little-endian u32 dimensions, then the elements as raw little-endian bytes.
    /// </summary>
    public const sbyte NdArray = 2;
}
