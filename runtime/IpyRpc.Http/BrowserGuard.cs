using System.Net;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace IpyRpc.Http;

/// <summary>
/// What a web page in a browser may do with the endpoints. A browser names the page's origin in an <c>Origin</c> header
/// on every WebSocket handshake and cross-origin request; clients that are not browsers (curl, the .NET and Python
/// clients) send none and are let through untouched. A page of an origin in <see cref="IpyRpcHttpOptions.AllowedOrigins"/>
/// is allowed, with the CORS headers its browser asks for; a page of the server's own origin is allowed too, except on a
/// loopback listener reached under a name that is not a loopback one (DNS rebinding: a hostile name made to resolve to
/// 127.0.0.1 is "same origin" with itself). Any other page is refused with <c>403</c>: without this, any site a user
/// visits could open a WebSocket to a server on their machine (browsers apply no CORS to WebSockets) and call it.
/// </summary>
internal sealed class BrowserGuard(IpyRpcHttpOptions options)
{
    private readonly HashSet<string> _allowed = new(options.AllowedOrigins.Select(o => o.TrimEnd('/')), StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// <paramref name="next"/>, behind the guard; <paramref name="json"/>: refusals are JSON-RPC error objects;
    /// <paramref name="eventStream"/>: the event stream's own (<c>{"error": {"code", "message"}}</c>).
    /// </summary>
    public RequestDelegate Wrap(RequestDelegate next, bool json, bool eventStream = false) => context =>
    {
        string? origin = context.Request.Headers.Origin;
        if (string.IsNullOrEmpty(origin)) return next(context); // not a web page

        if (_allowed.Contains("*") || _allowed.Contains(origin))
        {
            // A listed origin: the browser may read the answers (and send the headers the protocol uses).
            IHeaderDictionary headers = context.Response.Headers;
            headers.AccessControlAllowOrigin = origin;
            headers.AccessControlExposeHeaders = "IpyRpc-Connection, IpyRpc-Idle-Timeout";
            headers.Vary = "Origin";
            if (HttpMethods.IsOptions(context.Request.Method) && context.Request.Headers.AccessControlRequestMethod.Count > 0)
            {
                headers.AccessControlAllowMethods = "GET, HEAD, POST";
                headers.AccessControlAllowHeaders = context.Request.Headers.AccessControlRequestHeaders.ToString() is { Length: > 0 } asked ? asked : "Content-Type";
                headers.AccessControlMaxAge = "600";
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                return Task.CompletedTask;
            }

            return next(context);
        }

        if (SameOrigin(context, origin)) return next(context);
        return RefuseAsync(context, origin, json, eventStream);
    };

    private static bool SameOrigin(HttpContext context, string origin)
    {
        HttpRequest request = context.Request;
        if (!string.Equals(origin, $"{request.Scheme}://{request.Host.Value}", StringComparison.OrdinalIgnoreCase)) return false;

        // On a loopback listener only a loopback name is the server's own: another name that resolves here is a rebinding.
        IPAddress? local = context.Connection.LocalIpAddress;
        return local is null || !IPAddress.IsLoopback(local) || IsLoopbackName(request.Host.Host);
    }

    private static bool IsLoopbackName(string host)
        => host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(host.Trim('[', ']'), out IPAddress? address) && IPAddress.IsLoopback(address));

    private static async Task RefuseAsync(HttpContext context, string origin, bool json, bool eventStream)
    {
        string message = $"Requests from web pages of {origin} are refused: add the origin to IpyRpcHttpOptions.AllowedOrigins to let them call this server.";
        context.Response.StatusCode = StatusCodes.Status403Forbidden;
        if (eventStream)
        {
            await EventStreamEndpoint.ErrorAsync(context.Response, StatusCodes.Status403Forbidden, Protocol.ErrorCodes.Unauthorized, message);
            return;
        }

        if (json)
        {
            context.Response.ContentType = "application/json";
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new System.Text.Json.Utf8JsonWriter(buffer, Formatting.Json.JsonWire.Options))
            {
                writer.WriteStartObject();
                writer.WriteString("jsonrpc", "2.0");
                writer.WriteStartObject("error");
                writer.WriteNumber("code", -32004);
                writer.WriteString("message", message);
                writer.WriteStartObject("data");
                writer.WriteString("code", "unauthorized");
                writer.WriteEndObject();
                writer.WriteEndObject();
                writer.WriteNull("id");
                writer.WriteEndObject();
            }

            await context.Response.Body.WriteAsync(buffer.WrittenMemory);
            return;
        }

        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(message));
    }
}
