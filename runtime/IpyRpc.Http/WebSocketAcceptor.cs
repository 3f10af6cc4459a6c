using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace IpyRpc.Http;

/// <summary>
/// Accepts a WebSocket on an IpyRpc endpoint whether or not the app added ASP.NET Core's WebSocket
/// middleware: with it, through <c>HttpContext.WebSockets</c>; without it, by completing the
/// RFC 6455 handshake on the connection's upgrade feature, so <c>MapIpyRpc</c> needs no extra setup.
/// </summary>
internal static class WebSocketAcceptor
{
    private const string Rfc6455Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>Accepts the upgrade with the first of <paramref name="subProtocols"/> (in the server's order of preference) that the client offers; null if it offers none.</summary>
    public static async Task<WebSocket?> AcceptAsync(HttpContext context, string[] subProtocols, TimeSpan keepAlive, TimeSpan keepAliveTimeout)
    {
        if (Chosen(context.Request, subProtocols) is not { } subProtocol) return null;
        if (context.WebSockets.IsWebSocketRequest)
        {
            return await context.WebSockets.AcceptWebSocketAsync(new WebSocketAcceptContext { SubProtocol = subProtocol, KeepAliveInterval = keepAlive, KeepAliveTimeout = keepAliveTimeout }).ConfigureAwait(false);
        }

        IHttpUpgradeFeature? upgrade = context.Features.Get<IHttpUpgradeFeature>();
        string key = context.Request.Headers.SecWebSocketKey.ToString();
        if (upgrade is not { IsUpgradableRequest: true } || key.Length == 0 || context.Request.Headers.SecWebSocketVersion.ToString() != "13")
        {
            return null;
        }

        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = AcceptKey(key);
        context.Response.Headers.SecWebSocketProtocol = subProtocol;
        Stream stream = await upgrade.UpgradeAsync().ConfigureAwait(false); // sends 101 Switching Protocols
        return WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = true, SubProtocol = subProtocol, KeepAliveInterval = keepAlive, KeepAliveTimeout = keepAliveTimeout });
    }

    private static string? Chosen(HttpRequest request, string[] subProtocols)
    {
        foreach (string subProtocol in subProtocols)
        {
            foreach (string? value in request.Headers.SecWebSocketProtocol)
            {
                if (value is null) continue;
                foreach (string offered in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    if (offered == subProtocol) return subProtocol;
                }
            }
        }

        return null;
    }

    /// <summary>The Sec-WebSocket-Accept value: base64 of SHA-1 over the client's key and the RFC's GUID.</summary>
    internal static string AcceptKey(string key) => Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key.Trim() + Rfc6455Guid)));
}
