using System.Text.Encodings.Web;
using System.Text.Json;

namespace IpyRpc.Formatting.Json;

/// <summary>How IpyRpc writes JSON on the wire.</summary>
public static class JsonWire
{
    /// <summary>
    /// Text as itself, in UTF-8, escaping only what JSON requires (quotes, backslashes, control characters): a reader
    /// of a JSON-RPC response or a JSON result sees <c>"&lt;f8"</c> and <c>"héllo"</c>, not <c>"\u003Cf8"</c> and
    /// <c>"h\u00E9llo"</c>. The bodies are <c>application/json</c>, never HTML.
    /// </summary>
    public static JsonWriterOptions Options { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
