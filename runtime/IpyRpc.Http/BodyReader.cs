using System.Buffers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace IpyRpc.Http;

/// <summary>Reads a request body up to a limit, refusing by Content-Length before reading when it can.</summary>
internal static class BodyReader
{
    /// <summary>The body, or <see langword="null"/> when it is larger than <paramref name="limit"/>.</summary>
    public static async Task<ReadOnlyMemory<byte>?> ReadAsync(HttpContext context, long limit)
    {
        if (context.Request.ContentLength is long declared && declared > limit)
        {
            return null;
        }

        // Our own limit applies; Kestrel's global one (30 MB by default) must not cut in first.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = null;
        }

        var buffer = new ArrayBufferWriter<byte>((int)Math.Min(context.Request.ContentLength ?? 4096, Math.Min(limit, 64 * 1024 * 1024)) + 1);
        Stream body = context.Request.Body;
        while (true)
        {
            Memory<byte> target = buffer.GetMemory(64 * 1024);
            int read = await body.ReadAsync(target, context.RequestAborted).ConfigureAwait(false);
            if (read == 0)
            {
                return buffer.WrittenMemory;
            }

            buffer.Advance(read);
            if (buffer.WrittenCount > limit)
            {
                return null;
            }
        }
    }
}
