using System.Buffers;
using System.Text.Json;
using IpyRpc.Formatting;
using IpyRpc.Formatting.Json;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>Encodes the function list a <c>describe</c> returns, in either serialization. The field names are in docs/PROTOCOL.md.</summary>
public static class DescriptorCodec
{
    /// <summary>Encodes <paramref name="functions"/> as an array of descriptor maps.</summary>
    public static byte[] Encode(IReadOnlyList<FunctionDescriptor> functions, Serialization serialization)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        if (serialization == Serialization.Json)
        {
            using var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options);
            w.WriteStartArray();
            foreach (FunctionDescriptor f in functions) WriteJson(w, f);
            w.WriteEndArray();
        }
        else
        {
            var w = new MessagePackWriter(buffer);
            w.WriteArrayHeader(functions.Count);
            foreach (FunctionDescriptor f in functions) WriteMessagePack(ref w, f);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes a descriptor array.</summary>
    public static IReadOnlyList<FunctionDescriptor> Decode(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        // Both encodings are plain maps and arrays: read them as dynamic data, then pick fields.
        object? data;
        if (serialization == Serialization.Json)
        {
            var reader = new Utf8JsonReader(bytes);
            JsonRead.Next(ref reader);
            data = Formatters.Object.Read(ref reader);
        }
        else
        {
            var reader = new MessagePackReader(bytes);
            data = Formatters.Object.Read(ref reader);
        }

        if (data is not object?[] items)
        {
            throw new IpyRpcSerializationException("A function list must be an array");
        }

        return [.. items.Select(ToDescriptor)];
    }

    /// <summary>Encodes <paramref name="events"/> as an array of event descriptor maps (part 1 of a <c>describe</c> result).</summary>
    public static byte[] EncodeEvents(IReadOnlyList<EventDescriptor> events, Serialization serialization)
    {
        object?[] maps = [.. events.Select(e => (object?)new Dictionary<string, object?>
        {
            ["name"] = e.Name,
            ["payload_type"] = e.PayloadType,
            ["payload_schema"] = e.PayloadSchema,
            ["summary"] = e.Summary,
            ["remarks"] = e.Remarks,
            ["fingerprint"] = e.Fingerprint,
        })];
        return Jobs.JobCodec.Encode(maps, serialization);
    }

    /// <summary>Decodes an event descriptor array.</summary>
    public static IReadOnlyList<EventDescriptor> DecodeEvents(ReadOnlySpan<byte> bytes, Serialization serialization)
    {
        if (Jobs.JobCodec.Decode(bytes, serialization) is not object?[] items)
        {
            throw new IpyRpcSerializationException("An event list must be an array");
        }

        return [.. items.OfType<Dictionary<string, object?>>().Select(m => new EventDescriptor
        {
            Name = Str(m, "name") ?? "",
            PayloadType = Str(m, "payload_type") ?? "object",
            PayloadSchema = Str(m, "payload_schema"),
            Summary = Str(m, "summary"),
            Remarks = Str(m, "remarks"),
            Fingerprint = Str(m, "fingerprint"),
        })];
    }

    private static FunctionDescriptor ToDescriptor(object? item)
    {
        if (item is not Dictionary<string, object?> map)
        {
            throw new IpyRpcSerializationException("A function descriptor must be a map");
        }

        return new FunctionDescriptor
        {
            Name = Str(map, "name") ?? throw new IpyRpcSerializationException("A function descriptor needs a name"),
            Summary = Str(map, "summary"),
            Remarks = Str(map, "remarks"),
            Returns = Str(map, "returns"),
            ReturnType = Str(map, "return_type") ?? "void",
            ReturnSchema = SchemaText(map, "return_schema"),
            IsStream = map.TryGetValue("stream", out object? stream) && stream is true,
            ProgressType = Str(map, "progress_type"),
            ProgressSchema = SchemaText(map, "progress_schema"),
            Fingerprint = Str(map, "fingerprint"),
            InputSerialization = Str(map, "input_serialization") switch { "json" => Serialization.Json, "msgpack" => Serialization.MessagePack, _ => null },
            Parameters = map.TryGetValue("parameters", out object? ps) && ps is object?[] list
                ? [.. list.OfType<Dictionary<string, object?>>().Select(p => new ParameterDescriptor
                {
                    Name = Str(p, "name") ?? "",
                    Type = Str(p, "type") ?? "object",
                    Doc = Str(p, "doc"),
                    Schema = SchemaText(p, "schema"),
                    IsOptional = p.TryGetValue("optional", out object? o) && o is true,
                    DefaultValue = Str(p, "default"),
                    IsParams = p.TryGetValue("params", out object? gathered) && gathered is true,
                })]
                : [],
            Exceptions = map.TryGetValue("exceptions", out object? es) && es is object?[] elist
                ? [.. elist.OfType<Dictionary<string, object?>>().Select(e => new ExceptionDoc(Str(e, "type") ?? "", Str(e, "description") ?? ""))]
                : [],
        };
    }

    private static string? Str(Dictionary<string, object?> map, string key) => map.TryGetValue(key, out object? v) ? v as string : null;

    private static string? SchemaText(Dictionary<string, object?> map, string key)
    {
        if (!map.TryGetValue(key, out object? v) || v is null) return null;
        if (v is string s) return s;
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options)) Formatters.Object.Write(w, v);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteMessagePack(ref MessagePackWriter w, FunctionDescriptor f)
    {
        w.WriteMapHeader(f.InputSerialization is null ? 12 : 13);
        w.Write("name"); w.Write(f.Name);
        if (f.InputSerialization is { } input)
        {
            w.Write("input_serialization"); w.Write(MessageCodec.SerializationName(input));
        }

        w.Write("summary"); w.Write(f.Summary);
        w.Write("remarks"); w.Write(f.Remarks);
        w.Write("returns"); w.Write(f.Returns);
        w.Write("return_type"); w.Write(f.ReturnType);
        w.Write("return_schema"); w.Write(f.ReturnSchema);
        w.Write("stream"); w.Write(f.IsStream);
        w.Write("progress_type"); w.Write(f.ProgressType);
        w.Write("fingerprint"); w.Write(f.Fingerprint);
        w.Write("progress_schema"); w.Write(f.ProgressSchema);
        w.Write("parameters");
        w.WriteArrayHeader(f.Parameters.Count);
        foreach (ParameterDescriptor p in f.Parameters)
        {
            w.WriteMapHeader(p.IsParams ? 7 : 6);
            w.Write("name"); w.Write(p.Name);
            w.Write("type"); w.Write(p.Type);
            w.Write("schema"); w.Write(p.Schema);
            w.Write("doc"); w.Write(p.Doc);
            w.Write("optional"); w.Write(p.IsOptional);
            w.Write("default"); w.Write(p.DefaultValue);
            if (p.IsParams)
            {
                w.Write("params"); w.Write(true);
            }
        }

        w.Write("exceptions");
        w.WriteArrayHeader(f.Exceptions.Count);
        foreach (ExceptionDoc e in f.Exceptions)
        {
            w.WriteMapHeader(2);
            w.Write("type"); w.Write(e.Type);
            w.Write("description"); w.Write(e.Description);
        }
    }

    private static void WriteJson(Utf8JsonWriter w, FunctionDescriptor f)
    {
        w.WriteStartObject();
        w.WriteString("name", f.Name);
        w.WriteString("summary", f.Summary);
        w.WriteString("remarks", f.Remarks);
        w.WriteString("returns", f.Returns);
        w.WriteString("return_type", f.ReturnType);
        WriteSchema(w, "return_schema", f.ReturnSchema);
        w.WriteBoolean("stream", f.IsStream);
        w.WriteString("progress_type", f.ProgressType);
        w.WriteString("fingerprint", f.Fingerprint);
        if (f.InputSerialization is { } input) w.WriteString("input_serialization", MessageCodec.SerializationName(input));
        WriteSchema(w, "progress_schema", f.ProgressSchema);
        w.WriteStartArray("parameters");
        foreach (ParameterDescriptor p in f.Parameters)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteString("type", p.Type);
            WriteSchema(w, "schema", p.Schema);
            w.WriteString("doc", p.Doc);
            w.WriteBoolean("optional", p.IsOptional);
            w.WriteString("default", p.DefaultValue);
            if (p.IsParams) w.WriteBoolean("params", true);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        WriteExceptions(w, "exceptions", f.Exceptions);
        w.WriteEndObject();
    }

    /// <summary>Documented exceptions as a JSON array of <c>{type, description}</c> (descriptors and the OpenRPC document write them alike).</summary>
    internal static void WriteExceptions(Utf8JsonWriter w, string name, IReadOnlyList<ExceptionDoc> exceptions)
    {
        w.WriteStartArray(name);
        foreach (ExceptionDoc e in exceptions)
        {
            w.WriteStartObject();
            w.WriteString("type", e.Type);
            w.WriteString("description", e.Description);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static void WriteSchema(Utf8JsonWriter w, string name, string? schema)
    {
        w.WritePropertyName(name);
        if (schema is null) w.WriteNullValue();
        else w.WriteRawValue(schema);
    }
}
