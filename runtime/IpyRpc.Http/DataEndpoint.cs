using System.Globalization;
using System.Text.Json;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Http;

namespace IpyRpc.Http;

/// <summary>
/// A value kept for a pointer, read with a plain HTTP <c>GET</c> of the pointer's path (curl, a
/// browser tool, any language): <c>GET /ipyrpc/data/{id}?start=0&amp;stop=10</c> with the pointer's
/// secret key in the <c>IpyRpc-Key</c> header (never in the URL, which logs keep). JSON when the
/// request accepts <c>application/json</c>, MessagePack otherwise. Errors are
/// <c>{"code", "message"}</c> with 403 (wrong key), 410 (expired, released, evicted), 404 (unknown) or 400.
/// <c>HEAD</c> answers the same status and headers (the length of the value, or of the rows asked for) without the body.
/// </summary>
internal static class DataEndpoint
{
    public const string KeyHeader = "IpyRpc-Key";

    public static async Task GetAsync(HttpContext context, IpyRpcServer server, string path)
    {
        HttpResponse response = context.Response;
        bool json = context.Request.Headers.Accept.ToString().Contains("application/json", StringComparison.OrdinalIgnoreCase);
        long? start, stop;
        try
        {
            start = Row(context.Request.Query["start"]);
            stop = Row(context.Request.Query["stop"]);
        }
        catch (FormatException e)
        {
            await ErrorAsync(context, StatusCodes.Status400BadRequest, ErrorCodes.BadMessage, e.Message).ConfigureAwait(false);
            return;
        }

        byte[] value;
        try
        {
            value = server.Data.Read(path, context.Request.Headers[KeyHeader].ToString() is { Length: > 0 } key ? key : null, start, stop, json ? Serialization.Json : Serialization.MessagePack);
        }
        catch (IpyRpcException e)
        {
            int status = e.Code switch
            {
                ErrorCodes.PointerDenied => StatusCodes.Status403Forbidden,
                ErrorCodes.PointerExpired or ErrorCodes.PointerReleased or ErrorCodes.PointerEvicted => StatusCodes.Status410Gone,
                ErrorCodes.NotFound => StatusCodes.Status404NotFound,
                _ => StatusCodes.Status400BadRequest,
            };
            await ErrorAsync(context, status, e.Code, e.Error.Message).ConfigureAwait(false);
            return;
        }

        response.ContentType = json ? "application/json" : "application/msgpack";
        response.ContentLength = value.Length;
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await response.Body.WriteAsync(value, context.RequestAborted).ConfigureAwait(false);
    }

    private static long? Row(string? text) => string.IsNullOrEmpty(text) ? null
        : long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long row) ? row
        : throw new FormatException($"start and stop are row indices (whole numbers), not '{text}'.");

    private static Task ErrorAsync(HttpContext context, int status, string code, string message)
    {
        HttpResponse response = context.Response;
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (HttpMethods.IsHead(context.Request.Method)) return Task.CompletedTask;
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        // Not for HTML: quotes and apostrophes in messages stay as themselves.
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("code", code);
            w.WriteString("message", message);
            w.WriteEndObject();
        }

        return response.Body.WriteAsync(buffer.WrittenMemory).AsTask();
    }
}
