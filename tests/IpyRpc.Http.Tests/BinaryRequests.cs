using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>Raw requests to the binary endpoint, as a client written from docs/PROTOCOL.md would send them.</summary>
internal static class BinaryRequests
{
    /// <summary>POSTs one framed message, naming <paramref name="connection"/> in its header when given.</summary>
    public static async Task<HttpResponseMessage> PostAsync(HttpClient http, IpyRpcMessage message, string? connection)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "ipyrpc") { Content = new ByteArrayContent(MessageCodec.EncodeFramed(message)) };
        request.Content.Headers.ContentType = new(BinaryEndpoint.ContentType);
        if (connection is not null) request.Headers.Add(BinaryEndpoint.ConnectionHeader, connection);
        return await http.SendAsync(request);
    }

    /// <summary>A <c>hello</c>, which opens a connection the response's header names.</summary>
    public static Task<HttpResponseMessage> HelloAsync(HttpClient http)
        => PostAsync(http, new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [1] }, null);
}
