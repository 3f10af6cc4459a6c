using System.Security.Claims;

namespace IpyRpc;

/// <summary>
/// Decides whether a caller may call a function (<see cref="FunctionOptions.Auth"/>, set by glob).
/// It runs before the job is queued and may be asynchronous; a denial's reason reaches the caller
/// in an <c>unauthorized</c> error. It is also asked, without arguments, whether to list the
/// function and whether to show the caller its jobs (<see cref="AuthorizationContext.Purpose"/>): a
/// rule that reads the arguments decides those cases explicitly. A rule that throws denies.
/// </summary>
public delegate ValueTask<AuthorizationResult> IpyRpcAuthorizer(AuthorizationContext context);

/// <summary>Why an authorizer is asked.</summary>
public enum AuthorizationPurpose
{
    /// <summary>A call (or submit) is about to be queued; <see cref="AuthorizationContext.Arguments"/> holds its arguments.</summary>
    Call,
    /// <summary>A listing (<c>describe</c>, <c>rpc.discover</c>) asks whether to show the function; there are no arguments.</summary>
    Listing,
    /// <summary>A job of the function is being looked at, attached to or cancelled; there are no arguments.</summary>
    JobAccess,
    /// <summary>A client subscribes to the event named <see cref="AuthorizationContext.Function"/>; there are no arguments.</summary>
    Subscription,
}

/// <summary>What an authorizer is given: who calls, which function, with which arguments, and why it is asked.</summary>
public sealed class AuthorizationContext
{
    /// <summary>Creates a context (the server does this).</summary>
    public AuthorizationContext(IpyRpcConnection connection, string function, IReadOnlyDictionary<string, object?>? arguments, AuthorizationPurpose purpose)
    {
        Connection = connection;
        Function = function;
        Arguments = arguments;
        Purpose = purpose;
    }

    /// <summary>The caller's connection.</summary>
    public IpyRpcConnection Connection { get; }

    /// <summary>Who calls.</summary>
    public ClaimsPrincipal Principal => Connection.Principal;

    /// <summary>The function's exported name.</summary>
    public string Function { get; }

    /// <summary>
    /// For <see cref="AuthorizationPurpose.Call"/>: the arguments by parameter name, decoded as plain
    /// data (<see langword="long"/>, <see langword="double"/>, <see langword="string"/>, arrays, maps…);
    /// parameters left to their defaults are absent. <see langword="null"/> for listings and job access.
    /// </summary>
    public IReadOnlyDictionary<string, object?>? Arguments { get; }

    /// <summary>Why the authorizer is asked.</summary>
    public AuthorizationPurpose Purpose { get; }

    /// <summary>
    /// For <see cref="AuthorizationPurpose.Call"/>: fires when the call is cancelled, its caller goes away or its timeout
    /// passes, for a rule that looks something up to stop. The server stops waiting for the rule then either way: the
    /// call never starts, and its room on the connection is given back.
    /// </summary>
    public CancellationToken CancellationToken { get; init; }
}

/// <summary>An authorizer's answer.</summary>
/// <param name="Allowed">Whether the caller may go on.</param>
/// <param name="Reason">Why not, for the caller to read.</param>
public readonly record struct AuthorizationResult(bool Allowed, string? Reason)
{
    /// <summary>Allowed.</summary>
    public static AuthorizationResult Allow() => new(true, null);

    /// <summary>Denied, with a reason the caller will read.</summary>
    public static AuthorizationResult Deny(string reason) => new(false, reason);
}

/// <summary>Ready-made authorizers for <see cref="FunctionOptions.Auth"/>.</summary>
public static class Authorize
{
    /// <summary>Any authenticated caller.</summary>
    public static IpyRpcAuthorizer Authenticated() => static context => new(context.Connection.IsAuthenticated
        ? AuthorizationResult.Allow()
        : AuthorizationResult.Deny("this function needs an authenticated caller"));

    /// <summary>Callers in any of <paramref name="roles"/> (role claims, as ASP.NET Core's <c>IsInRole</c> sees them).</summary>
    public static IpyRpcAuthorizer Role(params string[] roles) => context => new(roles.Any(context.Principal.IsInRole)
        ? AuthorizationResult.Allow()
        : AuthorizationResult.Deny($"this function needs the role {string.Join(" or ", roles)}"));

    /// <summary>Callers with a claim of <paramref name="type"/> whose value is one of <paramref name="values"/> (any value when none are given).</summary>
    public static IpyRpcAuthorizer Claim(string type, params string[] values) => context => new(context.Principal.Claims.Any(c => c.Type == type && (values.Length == 0 || values.Contains(c.Value)))
        ? AuthorizationResult.Allow()
        : AuthorizationResult.Deny(values.Length == 0 ? $"this function needs a {type} claim" : $"this function needs a {type} claim of {string.Join(" or ", values)}"));

    /// <summary>Callers named <paramref name="names"/> (the principal's name: a user, a CURVE client, a shared-secret client's name).</summary>
    public static IpyRpcAuthorizer Names(params string[] names) => context => new(context.Principal.Identity?.Name is { } name && names.Contains(name)
        ? AuthorizationResult.Allow()
        : AuthorizationResult.Deny($"this function is for {string.Join(", ", names)} only"));

    /// <summary>A rule of your own, synchronous: <paramref name="reason"/> is what a denied caller reads.</summary>
    public static IpyRpcAuthorizer When(Func<AuthorizationContext, bool> rule, string reason) => context => new(rule(context)
        ? AuthorizationResult.Allow()
        : AuthorizationResult.Deny(reason));
}
