using System.Buffers;
using System.Text.Json;

namespace IpyRpc;

/// <summary>
/// The OpenRPC document (https://spec.open-rpc.org) of a function list: what <c>rpc.discover</c> returns, and
/// the schema file a client can be generated from (<c>ipyrpc schema URL</c>, docs/SCHEMA.md). Besides standard
/// OpenRPC it keeps everything a typed client needs: each method's fingerprint and signature, whether it
/// streams, its remarks and documented exceptions, and the schemas' annotations (docs/PROTOCOL.md).
/// </summary>
public static class OpenRpcDocument
{
    /// <summary>The version of IpyRpc's extensions this writer produces (<c>x-ipyrpc-schema</c>); readers refuse a newer one.</summary>
    public const int SchemaVersion = 1;

    /// <summary>Writes the document of <paramref name="functions"/> as UTF-8 JSON.</summary>
    /// <param name="functions">The functions, as a server describes them.</param>
    /// <param name="title">The document's <c>info.title</c>.</param>
    /// <param name="version">The document's <c>info.version</c>.</param>
    /// <param name="indented">Whether to indent (for a file people read and diff).</param>
    public static byte[] Write(IReadOnlyList<FunctionDescriptor> functions, string title, string version, bool indented = false)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("openrpc", "1.3.2");
            w.WriteStartObject("info");
            w.WriteString("title", title);
            w.WriteString("version", version);
            w.WriteEndObject();
            w.WriteNumber("x-ipyrpc-schema", SchemaVersion);
            w.WriteStartArray("methods");
            foreach (FunctionDescriptor f in functions.OrderBy(f => f.Name, StringComparer.Ordinal))
            {
                WriteMethod(w, f);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteMethod(Utf8JsonWriter w, FunctionDescriptor f)
    {
        w.WriteStartObject();
        w.WriteString("name", f.Name);
        if (f.Summary is not null) w.WriteString("summary", f.Summary);
        string description = string.Join("\n\n", new[] { f.Summary, f.Remarks }.Where(s => s is not null));
        if (description.Length > 0) w.WriteString("description", description);
        if (f.Remarks is not null) w.WriteString("x-ipyrpc-remarks", f.Remarks);
        w.WriteString("x-ipyrpc-signature", f.Signature);
        if (f.Fingerprint is not null) w.WriteString("x-ipyrpc-fingerprint", f.Fingerprint);
        if (f.IsStream) w.WriteBoolean("x-ipyrpc-stream", true);
        if (f.InputSerialization is { } input) w.WriteString("x-ipyrpc-input-serialization", Protocol.MessageCodec.SerializationName(input));
        if (f.ProgressType is not null)
        {
            w.WritePropertyName("x-ipyrpc-progress");
            WriteSchema(w, f.ProgressSchema, f.ProgressType, null);
        }
        w.WriteString("paramStructure", "either");
        w.WriteStartArray("params");
        foreach (ParameterDescriptor p in f.Parameters)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            if (p.Doc is not null) w.WriteString("description", p.Doc);
            w.WriteBoolean("required", !p.IsOptional);
            if (p.IsParams) w.WriteBoolean("x-ipyrpc-params", true); // positional arguments past the others gather into it
            w.WritePropertyName("schema");
            WriteSchema(w, p.Schema, p.Type, p.DefaultValue);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartObject("result");
        w.WriteString("name", "result");
        if (f.Returns is not null) w.WriteString("description", f.Returns);
        w.WritePropertyName("schema");
        WriteSchema(w, f.ReturnType == "void" ? "{\"type\":\"null\"}" : f.ReturnSchema, f.ReturnType, null);
        w.WriteEndObject();
        if (f.Exceptions.Count > 0)
        {
            w.WriteStartArray("errors");
            w.WriteStartObject();
            w.WriteNumber("code", -32000);
            w.WriteString("message", string.Join("; ", f.Exceptions.Select(e => $"{e.Type}: {e.Description}")));
            w.WriteEndObject();
            w.WriteEndArray();
            DescriptorCodec.WriteExceptions(w, "x-ipyrpc-exceptions", f.Exceptions);
        }

        w.WriteEndObject();
    }

    private static void WriteSchema(Utf8JsonWriter w, string? schema, string type, string? defaultValue)
    {
        using JsonDocument doc = JsonDocument.Parse(schema ?? "{}");
        w.WriteStartObject();
        foreach (JsonProperty p in doc.RootElement.EnumerateObject()) p.WriteTo(w);
        w.WriteString("x-csharp-type", type);
        if (defaultValue is not null) w.WriteString("x-csharp-default", defaultValue);
        w.WriteEndObject();
    }
}
