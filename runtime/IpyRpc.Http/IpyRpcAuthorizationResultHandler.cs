using System.Text.Json;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Http;

namespace IpyRpc.Http;

/// <summary>Which IpyRpc endpoint an ASP.NET Core endpoint is (its metadata).</summary>
internal enum IpyRpcEndpointKind
{
    JsonRpc,
    Binary,
    Events,
}

/// <summary>Marks IpyRpc's endpoints, so their refusals can be written in IpyRpc's own shapes.</summary>
internal sealed record IpyRpcEndpointMetadata(IpyRpcEndpointKind Kind);

/// <summary>
/// Writes ASP.NET Core's authorization refusals on IpyRpc endpoints as IpyRpc errors (keeping the
/// 401 or 403 status); other endpoints get the default behaviour.
/// </summary>
internal sealed class IpyRpcAuthorizationResultHandler(AuthorizationMiddlewareResultHandler fallback) : IAuthorizationMiddlewareResultHandler
{
    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        if (authorizeResult.Succeeded || context.GetEndpoint()?.Metadata.GetMetadata<IpyRpcEndpointMetadata>() is not { } endpoint)
        {
            await fallback.HandleAsync(next, context, policy, authorizeResult).ConfigureAwait(false);
            return;
        }

        // Let the schemes add their own headers (WWW-Authenticate), then write the body ourselves.
        if (authorizeResult.Challenged)
        {
            foreach (string scheme in policy.AuthenticationSchemes.Count > 0 ? policy.AuthenticationSchemes : [null!])
            {
                await Microsoft.AspNetCore.Authentication.AuthenticationHttpContextExtensions.ChallengeAsync(context, scheme).ConfigureAwait(false);
            }
        }
        else
        {
            context.Response.StatusCode = StatusCodes.Status403Forbidden;
        }

        string message = authorizeResult.Challenged
            ? "Missing or wrong credentials: this endpoint needs an authenticated caller (for example an Authorization: Bearer token)."
            : $"{context.User.Identity?.Name ?? "This caller"} is authenticated but not allowed by the endpoint's authorization policy.";
        var error = new RemoteError { Code = ErrorCodes.Unauthorized, Message = message };
        if (endpoint.Kind == IpyRpcEndpointKind.Binary)
        {
            byte[] bytes = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Error, Parts = [error.Encode(Serialization.MessagePack)] });
            context.Response.ContentType = BinaryEndpoint.ContentType;
            context.Response.ContentLength = bytes.Length;
            await context.Response.Body.WriteAsync(bytes).ConfigureAwait(false);
            return;
        }

        if (endpoint.Kind == IpyRpcEndpointKind.Events)
        {
            await EventStreamEndpoint.ErrorAsync(context.Response, context.Response.StatusCode, error.Code, message).ConfigureAwait(false);
            return;
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, global::IpyRpc.Formatting.Json.JsonWire.Options))
        {
            w.WriteStartObject();
            w.WriteString("jsonrpc", "2.0");
            w.WriteStartObject("error");
            w.WriteNumber("code", ErrorCodes.ToJsonRpc(ErrorCodes.Unauthorized));
            w.WriteString("message", message);
            w.WritePropertyName("data");
            error.WriteJson(w);
            w.WriteEndObject();
            w.WriteNull("id");
            w.WriteEndObject();
        }

        context.Response.ContentType = "application/json";
        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory).ConfigureAwait(false);
    }
}
