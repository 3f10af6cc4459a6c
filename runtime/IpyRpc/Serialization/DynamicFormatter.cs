using System.Collections;
using System.Text.Json;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;

namespace IpyRpc.Formatting;

/// <summary>
/// Values whose type is only known at run time. Writing looks the runtime type up in
/// <see cref="FormatterRegistry"/> (falling back to maps for dictionaries and arrays for
/// sequences); reading produces plain data: <see langword="null"/>, <see cref="bool"/>,
/// <see cref="long"/> (or <see cref="ulong"/> above its range), <see cref="double"/>,
/// <see cref="string"/>, <c>byte[]</c>, numeric arrays, <see cref="DateTime"/> for timestamps,
/// <c>object?[]</c> and <c>Dictionary&lt;string, object?&gt;</c>.
/// </summary>
public sealed class DynamicFormatter : IpyRpcFormatter<object?>
{
    /// <inheritdoc/>
    public override void Write(ref MessagePackWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNil();
                return;
            case string s:
                writer.Write(s);
                return;
            case RemotePointer pointer:
                Write(ref writer, pointer.ToMap()); // a pointer passed where a value goes: resolved where the function runs
                return;
        }

        IpyRpcFormatter? known = FormatterRegistry.Find(value.GetType());
        if (known is not null && known is not DynamicFormatter)
        {
            known.WriteObject(ref writer, value);
            return;
        }

        switch (value)
        {
            case IDictionary dictionary:
                writer.WriteMapHeader(dictionary.Count);
                foreach (DictionaryEntry entry in dictionary)
                {
                    writer.Write(Convert.ToString(entry.Key, System.Globalization.CultureInfo.InvariantCulture));
                    Write(ref writer, entry.Value);
                }

                return;
            case IEnumerable sequence:
                var items = new List<object?>();
                foreach (object? item in sequence) items.Add(item);
                writer.WriteArrayHeader(items.Count);
                foreach (object? item in items) Write(ref writer, item);
                return;
            default:
                throw NoFormatter(value);
        }
    }

    /// <inheritdoc/>
    public override object? Read(ref MessagePackReader reader)
    {
        switch (reader.NextType)
        {
            case MessagePackType.Nil:
                reader.ReadNil();
                return null;
            case MessagePackType.Boolean:
                return reader.ReadBoolean();
            case MessagePackType.Integer:
                return reader.NextCode == 0xcf ? ReadUnsigned(ref reader) : reader.ReadInt64();
            case MessagePackType.Float:
                return reader.ReadDouble();
            case MessagePackType.String:
                return reader.ReadString();
            case MessagePackType.Binary:
                return Formatters.CopyOf(reader.ReadBinary());
            case MessagePackType.Array:
                {
                    reader.Enter();
                    int n = reader.ReadArrayHeader();
                    var items = new object?[n];
                    for (int i = 0; i < n; i++) items[i] = Read(ref reader);
                    reader.Exit();
                    return items;
                }

            case MessagePackType.Map:
                {
                    reader.Enter();
                    int n = reader.ReadMapHeader();
                    var map = new Dictionary<string, object?>(n);
                    for (int i = 0; i < n; i++)
                    {
                        string key = Read(ref reader) is { } k ? Convert.ToString(k, System.Globalization.CultureInfo.InvariantCulture)! : "";
                        map[key] = Read(ref reader);
                    }

                    reader.Exit();
                    return map;
                }

            case MessagePackType.Extension:
                return ReadExtension(ref reader);
            default:
                throw reader.Error($"Byte 0x{reader.NextCode:x2} does not start a MessagePack value");
        }
    }

    private static object ReadUnsigned(ref MessagePackReader reader)
    {
        ulong v = reader.ReadUInt64();
        return v <= long.MaxValue ? (long)v : v;
    }

    private static object ReadExtension(ref MessagePackReader reader)
    {
        MessagePackReader probe = reader;
        (sbyte type, _) = probe.ReadExtensionHeader();
        if (type == -1)
        {
            return reader.ReadDateTime();
        }

        if (type == WireExtensions.NumericArray)
        {
            MessagePackReader peek = reader;
            ReadOnlySpan<byte> data = peek.ReadExtension(out _);
            string dtype = data.Length > 0 && data.Length >= 1 + data[0] ? System.Text.Encoding.ASCII.GetString(data.Slice(1, data[0])) : "";
            IpyRpcFormatter? f = dtype switch
            {
                "<f8" => Formatters.DoubleArray,
                "<f4" => Formatters.SingleArray,
                "<i4" => Formatters.Int32Array,
                "<i8" => Formatters.Int64Array,
                "<i2" => Formatters.Int16Array,
                "<u2" => Formatters.UInt16Array,
                "<u4" => Formatters.UInt32Array,
                "<u8" => Formatters.UInt64Array,
                "|i1" => Formatters.SByteArray,
                _ => null,
            };
            if (f is not null)
            {
                return f.ReadObject(ref reader)!;
            }

            throw reader.Error($"Numeric array of unknown dtype \"{dtype}\"");
        }

        ReadOnlySpan<byte> body = reader.ReadExtension(out sbyte t);
        return new MessagePackExtension(t, body.ToArray());
    }

    // An n-dimensional array (ext 2: u8 N, dtype, u8 rank, rank × u32 shape, raw little-endian elements in C order) as
    // {"type": "ndarray", "dtype", "shape", "data": nested arrays}; false (and nothing written) when it is not well formed.
    private static bool TryWriteNdArray(Utf8JsonWriter writer, byte[] data)
    {
        if (data.Length < 2 || data.Length < 1 + data[0] + 1) return false;
        string dtype = System.Text.Encoding.ASCII.GetString(data, 1, data[0]);
        int at = 1 + data[0];
        int rank = data[at++];
        if (data.Length < at + (4 * rank)) return false;
        var shape = new long[rank];
        long count = 1;
        for (int d = 0; d < rank; d++, at += 4)
        {
            shape[d] = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at));
            count *= shape[d];
        }

        int size = dtype.Length == 3 && char.IsDigit(dtype[2]) ? dtype[2] - '0' : 0;
        if (size == 0 || dtype[1] is not ('f' or 'i' or 'u') || (long)(data.Length - at) != count * size) return false;
        writer.WriteStartObject();
        writer.WriteString("type", "ndarray");
        writer.WriteString("dtype", dtype);
        writer.WriteStartArray("shape");
        foreach (long n in shape) writer.WriteNumberValue(n);
        writer.WriteEndArray();
        writer.WritePropertyName("data");
        ReadOnlySpan<byte> raw = data.AsSpan(at);
        int index = 0;
        if (rank == 0) WriteElement(writer, raw[..size], dtype[1], size);
        else WriteLevel(writer, raw, dtype[1], size, shape, 0, ref index);
        writer.WriteEndObject();
        return true;
    }

    private static void WriteLevel(Utf8JsonWriter writer, ReadOnlySpan<byte> raw, char kind, int size, long[] shape, int level, ref int index)
    {
        writer.WriteStartArray();
        for (long i = 0; i < shape[level]; i++)
        {
            if (level == shape.Length - 1)
            {
                WriteElement(writer, raw.Slice(index * size, size), kind, size);
                index++;
            }
            else
            {
                WriteLevel(writer, raw, kind, size, shape, level + 1, ref index);
            }
        }

        writer.WriteEndArray();
    }

    private static void WriteElement(Utf8JsonWriter writer, ReadOnlySpan<byte> e, char kind, int size)
    {
        switch (kind, size)
        {
            case ('f', 8): WriteFloat(writer, System.Buffers.Binary.BinaryPrimitives.ReadDoubleLittleEndian(e)); break;
            case ('f', 4):
                float single = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(e);
                if (float.IsFinite(single)) writer.WriteNumberValue(single);
                else WriteFloat(writer, single);
                break;
            case ('i', 8): writer.WriteNumberValue(System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(e)); break;
            case ('i', 4): writer.WriteNumberValue(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(e)); break;
            case ('i', 2): writer.WriteNumberValue(System.Buffers.Binary.BinaryPrimitives.ReadInt16LittleEndian(e)); break;
            case ('i', 1): writer.WriteNumberValue((sbyte)e[0]); break;
            case ('u', 8): writer.WriteNumberValue(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(e)); break;
            case ('u', 4): writer.WriteNumberValue(System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(e)); break;
            case ('u', 2): writer.WriteNumberValue(System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(e)); break;
            default: writer.WriteNumberValue(e[0]); break;
        }
    }

    // Non-finite values as the JSON shapes of PROTOCOL.md ("NaN", "Infinity", "-Infinity").
    private static void WriteFloat(Utf8JsonWriter writer, double v)
    {
        if (double.IsFinite(v)) writer.WriteNumberValue(v);
        else writer.WriteStringValue(double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                return;
            case string s:
                writer.WriteStringValue(s);
                return;
            case JsonElement element:
                element.WriteTo(writer);
                return;
            case RemotePointer pointer:
                Write(writer, pointer.ToMap());
                return;
        }

        IpyRpcFormatter? known = FormatterRegistry.Find(value.GetType());
        if (known is not null && known is not DynamicFormatter)
        {
            known.WriteObject(writer, value);
            return;
        }

        switch (value)
        {
            case IDictionary dictionary:
                writer.WriteStartObject();
                foreach (DictionaryEntry entry in dictionary)
                {
                    writer.WritePropertyName(Convert.ToString(entry.Key, System.Globalization.CultureInfo.InvariantCulture)!);
                    Write(writer, entry.Value);
                }

                writer.WriteEndObject();
                return;
            case IEnumerable sequence:
                writer.WriteStartArray();
                foreach (object? item in sequence) Write(writer, item);
                writer.WriteEndArray();
                return;
            case MessagePackExtension { Type: WireExtensions.NdArray } nd when TryWriteNdArray(writer, nd.Data):
                return; // as the seeds' ndarray object, the shape a JSON caller of the function gets
            case MessagePackExtension ext:
                writer.WriteStartObject();
                writer.WriteNumber("ext", ext.Type);
                writer.WriteBase64String("data", ext.Data);
                writer.WriteEndObject();
                return;
            default:
                throw NoFormatter(value);
        }
    }

    /// <inheritdoc/>
    public override object? Read(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null: return null;
            case JsonTokenType.True: return true;
            case JsonTokenType.False: return false;
            case JsonTokenType.String: return reader.GetString();
            case JsonTokenType.Number: return reader.TryGetInt64(out long l) ? (object)l : reader.GetDouble();
            case JsonTokenType.StartArray:
                {
                    var items = new List<object?>();
                    while (true)
                    {
                        JsonRead.Next(ref reader);
                        if (reader.TokenType == JsonTokenType.EndArray) return items.ToArray();
                        items.Add(Read(ref reader));
                    }
                }

            case JsonTokenType.StartObject:
                {
                    var map = new Dictionary<string, object?>();
                    while (true)
                    {
                        JsonRead.Next(ref reader);
                        if (reader.TokenType == JsonTokenType.EndObject) return map;
                        string key = reader.GetString()!;
                        JsonRead.Next(ref reader);
                        map[key] = Read(ref reader);
                    }
                }

            default:
                throw JsonRead.Unexpected(ref reader, "a JSON value");
        }
    }

    private static IpyRpcSerializationException NoFormatter(object value) => new(
        $"No formatter is known for {TypeNames.Display(value.GetType())}. Pass it to a typed proxy method, " +
        "use it in an [IpyRpcExport] signature so the generator emits one, or call FormatterRegistry.Register.");
}

/// <summary>A MessagePack extension value of a type IpyRpc does not interpret.</summary>
/// <param name="Type">The extension type code.</param>
/// <param name="Data">The extension's bytes.</param>
public sealed record MessagePackExtension(sbyte Type, byte[] Data);
