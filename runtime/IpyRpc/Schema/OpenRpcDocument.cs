using System.Buffers;
using System.Text.Json;

namespace IpyRpc;

/// <summary>
/// The OpenRPC document (https://spec.open-rpc.org) of a function list: what <c>rpc.discover</c> returns, and
/// the schema file a client can be generated from (<c>ipyrpc schema URL</c>, docs/SCHEMA.md). Besides standard
/// OpenRPC it keeps everything a typed client needs: each method's fingerprint and signature, whether it
/// streams, its remarks and documented exceptions, the schemas' annotations, and the events the server
/// publishes (<c>x-ipyrpc-events</c>) (docs/PROTOCOL.md).
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
    /// <param name="events">The events the server publishes (<c>client.Events</c>), listed under <c>x-ipyrpc-events</c>; a client generated from the document gets a typed declaration of each.</param>
    public static byte[] Write(IReadOnlyList<FunctionDescriptor> functions, string title, string version, bool indented = false, IReadOnlyList<EventDescriptor>? events = null)
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
            if (events is { Count: > 0 })
            {
                w.WriteStartArray("x-ipyrpc-events");
                foreach (EventDescriptor e in events.OrderBy(e => e.Name, StringComparer.Ordinal)) WriteEvent(w, e);
                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteMethod(Utf8JsonWriter w, FunctionDescriptor f)
    {
        w.WriteStartObject();
        w.WriteString("name", f.Name);
        WriteDocs(w, f.Summary, f.Remarks);
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

    private static void WriteEvent(Utf8JsonWriter w, EventDescriptor e)
    {
        w.WriteStartObject();
        w.WriteString("name", e.Name);
        WriteDocs(w, e.Summary, e.Remarks);
        if (e.Fingerprint is not null) w.WriteString("x-ipyrpc-fingerprint", e.Fingerprint);
        w.WritePropertyName("schema");
        WriteSchema(w, e.PayloadSchema, e.PayloadType, null);
        w.WriteEndObject();
    }

    // OpenRPC's summary and description, and the remarks apart so a generated client can put them in <remarks>.
    private static void WriteDocs(Utf8JsonWriter w, string? summary, string? remarks)
    {
        if (summary is not null) w.WriteString("summary", summary);
        string description = string.Join("\n\n", new[] { summary, remarks }.Where(s => s is not null));
        if (description.Length > 0) w.WriteString("description", description);
        if (remarks is not null) w.WriteString("x-ipyrpc-remarks", remarks);
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
