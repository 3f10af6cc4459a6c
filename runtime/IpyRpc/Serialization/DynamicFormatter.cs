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
