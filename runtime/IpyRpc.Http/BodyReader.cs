using System.Buffers;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace IpyRpc.Http;

/// <summary>Reads a request body up to a limit, refusing by Content-Length before reading when it can.</summary>
internal static class BodyReader
{
    /// <summary>The body, or <see langword="null"/> when it is larger than <paramref name="limit"/>; a large one of declared length in an array rented from <paramref name="pool"/> when given.</summary>
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))] // once per request: its state is reused
    public static async ValueTask<ReadOnlyMemory<byte>?> ReadAsync(HttpContext context, long limit, PooledParts? pool = null)
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

        if (context.Request.ContentLength is long length)
        {
            // The usual case: read exactly the declared bytes into one array of that size.
            byte[] exact = pool is not null && PooledParts.ShouldPool(length) ? pool.Rent((int)length) : GC.AllocateUninitializedArray<byte>((int)length);
            int read = await context.Request.Body.ReadAtLeastAsync(exact.AsMemory(0, (int)length), (int)length, throwOnEndOfStream: false, context.RequestAborted).ConfigureAwait(false);
            return exact.AsMemory(0, read);
        }

        // Chunked: grow as bytes come, and stop counting past the limit.
        var buffer = new ArrayBufferWriter<byte>(4096);
        Stream body = context.Request.Body;
        while (true)
        {
            Memory<byte> target = buffer.GetMemory(4096);
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
