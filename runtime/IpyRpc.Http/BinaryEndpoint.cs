using IpyRpc.Protocol;
using Microsoft.AspNetCore.Http;

namespace IpyRpc.Http;

/// <summary>
/// The binary protocol over HTTP: the request body is one framed message (a call, hello, describe
/// or ping); the response streams framed messages back (the call's output as it is written, then
/// its result or error). Aborting the request cancels the call.
/// </summary>
internal sealed class BinaryEndpoint(IpyRpcServer server)
{
    public const string ContentType = "application/x-ipyrpc";

    public async Task HandleAsync(HttpContext context)
    {
        HttpResponse response = context.Response;
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            response.Headers.Allow = "POST";
            await WriteErrorAsync(response, StatusCodes.Status405MethodNotAllowed, 0, ErrorCodes.BadMessage, $"Send IpyRpc messages with POST, not {context.Request.Method}.");
            return;
        }

        string? type = context.Request.ContentType;
        if (type is null || !(type.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase) || type.StartsWith("application/octet-stream", StringComparison.OrdinalIgnoreCase)))
        {
            await WriteErrorAsync(response, StatusCodes.Status415UnsupportedMediaType, 0, ErrorCodes.BadMessage, $"The binary endpoint takes Content-Type {ContentType}, not {type ?? "none"}. JSON-RPC calls go to the JSON endpoint.");
            return;
        }

        long limit = server.Options.MaxMessageBytes;
        ReadOnlyMemory<byte>? body = await BodyReader.ReadAsync(context, limit + MessageCodec.FramePrefixBytes);
        if (body is null)
        {
            await WriteErrorAsync(response, StatusCodes.Status413PayloadTooLarge, 0, ErrorCodes.TooLarge, $"The message is larger than the server's limit of {limit} bytes.");
            return;
        }

        IpyRpcMessage message;
        try
        {
            message = MessageCodec.DecodeFramed(body.Value, limit);
        }
        catch (ProtocolException e)
        {
            int status = e.Code == ErrorCodes.TooLarge ? StatusCodes.Status413PayloadTooLarge : StatusCodes.Status400BadRequest;
            await WriteErrorAsync(response, status, e.Id, e.Code, e.Message);
            return;
        }

        if ((message.Kind == MessageKind.Cancel && message.JobId is null) || message.Kind is MessageKind.Event or MessageKind.Pong or MessageKind.Result or MessageKind.Error or MessageKind.Output)
        {
            // Over HTTP a call is cancelled by aborting its request; nothing else expects a reply.
            response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }

        response.ContentType = ContentType;
        response.Headers.CacheControl = "no-cache";
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new SemaphoreSlim(1, 1);
        ServerSession session = server.CreateSession(async (reply, ct) =>
        {
            await gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                bool final = reply.Id == message.Id && reply.Kind is MessageKind.Result or MessageKind.Error or MessageKind.Hello or MessageKind.Pong;
                byte[] bytes = MessageCodec.EncodeFramed(reply);
                if (final && !response.HasStarted)
                {
                    response.ContentLength = bytes.Length; // a call that printed nothing: one plain response, no chunking
                }

                await response.Body.WriteAsync(bytes, context.RequestAborted).ConfigureAwait(false);
                if (final)
                {
                    // End the response with the last message, so the client's connection is free for its next call at once.
                    await response.CompleteAsync().ConfigureAwait(false);
                    done.TrySetResult();
                }
                else
                {
                    await response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                }
            }
            finally
            {
                gate.Release();
            }
        });

        try
        {
            await session.HandleAsync(message).ConfigureAwait(false);
            await done.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The caller went away or cancelled; disposing the session cancels the job.
        }
        finally
        {
            await session.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task WriteErrorAsync(HttpResponse response, int status, ulong id, string code, string message)
    {
        response.StatusCode = status;
        response.ContentType = ContentType;
        byte[] bytes = MessageCodec.EncodeFramed(new IpyRpcMessage
        {
            Kind = MessageKind.Error,
            Id = id,
            Parts = [new RemoteError { Code = code, Message = message }.Encode(Serialization.MessagePack)],
        });
        await response.Body.WriteAsync(bytes).ConfigureAwait(false);
    }
}
