using System.Text;
using System.Text.Json;

namespace IpyRpc.Http;

/// <summary>
/// A JSON-RPC request body that is one well-formed call, read in one pass: <c>jsonrpc</c> exactly <c>"2.0"</c>, a
/// string <c>method</c>, <c>params</c> an array or an object (or absent), and <c>id</c> a string, a number or null (or
/// absent: a notification), each at most once and nothing else. Any other body is not one (<see cref="TryRead"/> is
/// false) and goes the whole document's way, which answers a batch and says what is wrong with a bad request.
/// </summary>
internal readonly record struct LoneCall(string Method, ReadOnlyMemory<byte> Parameters, string? Id, bool Notification)
{
    private const int SeenVersion = 1, SeenMethod = 2, SeenParams = 4, SeenId = 8;

    /// <summary>Reads <paramref name="body"/> as one call; false for anything else, malformed JSON included.</summary>
    public static bool TryRead(ReadOnlyMemory<byte> body, int maxDepth, out LoneCall call)
    {
        call = default;
        ReadOnlySpan<byte> bytes = body.Span;
        // RFC 8259 JSON is UTF-8; a body that is not gets the document path's parse error.
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) return false;
        try
        {
            var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { MaxDepth = maxDepth });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            int seen = 0;
            string? method = null, id = null;
            ReadOnlyMemory<byte> parameters = ReadOnlyMemory<byte>.Empty;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                int member = reader.ValueTextEquals("jsonrpc"u8) ? SeenVersion
                    : reader.ValueTextEquals("method"u8) ? SeenMethod
                    : reader.ValueTextEquals("params"u8) ? SeenParams
                    : reader.ValueTextEquals("id"u8) ? SeenId
                    : 0;
                if (member == 0 || (seen & member) != 0 || !reader.Read()) return false;
                seen |= member;
                switch (member)
                {
                    case SeenVersion:
                        if (reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("2.0"u8)) return false;
                        break;
                    case SeenMethod:
                        if (reader.TokenType != JsonTokenType.String) return false;
                        method = reader.GetString();
                        break;
                    case SeenParams:
                        if (reader.TokenType is not (JsonTokenType.StartArray or JsonTokenType.StartObject)) return false;
                        int start = (int)reader.TokenStartIndex;
                        reader.Skip();
                        // The params' own bytes, where they came: no copy, no string and re-encoding between the body and the decoder.
                        parameters = body[start..(int)reader.BytesConsumed];
                        break;
                    default:
                        if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.Number or JsonTokenType.Null)) return false;
                        // The id's raw JSON, echoed exactly (a string with its quotes and escapes as sent).
                        id = Encoding.UTF8.GetString(bytes[(int)reader.TokenStartIndex..(int)reader.BytesConsumed]);
                        break;
                }
            }

            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()) return false;
            if ((seen & (SeenVersion | SeenMethod)) != (SeenVersion | SeenMethod)) return false;
            call = new LoneCall(method!, parameters, id, Notification: (seen & SeenId) == 0);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
