using System.Buffers;
using System.Text.Json;

namespace IpyRpc.Http;

/// <summary>Builds the OpenRPC document (https://spec.open-rpc.org) that <c>rpc.discover</c> returns.</summary>
internal static class OpenRpc
{
    public static byte[] Document(IReadOnlyList<FunctionDescriptor> functions, IpyRpcHttpOptions options)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("openrpc", "1.3.2");
            w.WriteStartObject("info");
            w.WriteString("title", options.Title);
            w.WriteString("version", options.Version);
            w.WriteEndObject();
            w.WriteStartArray("methods");
            foreach (FunctionDescriptor f in functions)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                if (f.Summary is not null) w.WriteString("summary", f.Summary);
                string? description = string.Join("\n\n", new[] { f.Summary, f.Remarks }.Where(s => s is not null));
                if (description.Length > 0) w.WriteString("description", description);
                w.WriteString("paramStructure", "either");
                w.WriteStartArray("params");
                foreach (ParameterDescriptor p in f.Parameters)
                {
                    w.WriteStartObject();
                    w.WriteString("name", p.Name);
                    if (p.Doc is not null) w.WriteString("description", p.Doc);
                    w.WriteBoolean("required", !p.IsOptional);
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
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
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
