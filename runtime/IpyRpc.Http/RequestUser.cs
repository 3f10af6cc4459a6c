using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features.Authentication;

namespace IpyRpc.Http;

/// <summary>Who a request authenticated as, read without making an anonymous principal for every request that did not.</summary>
internal static class RequestUser
{
    /// <summary>
    /// The request's principal when it authenticated; <see langword="null"/> when it did not. Reading
    /// <c>HttpContext.User</c> on a request that no authentication touched makes an empty principal, its identity and
    /// their lists (about 300 bytes a request); the authentication feature holds whatever authentication set.
    /// </summary>
    public static ClaimsPrincipal? Authenticated(HttpContext context)
        => context.Features.Get<IHttpAuthenticationFeature>()?.User is { } user && user.Identity?.IsAuthenticated == true ? user : null;
}
