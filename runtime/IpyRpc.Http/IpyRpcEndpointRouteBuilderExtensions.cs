using IpyRpc.Http;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds IpyRpc's endpoints to an ASP.NET Core application.</summary>
public static class IpyRpcEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the JSON-RPC 2.0 endpoint (<see cref="IpyRpcHttpOptions.JsonRpcPath"/>, <c>/rpc</c>), the
    /// binary protocol endpoint (<see cref="IpyRpcHttpOptions.BinaryPath"/>, <c>/ipyrpc</c>) and the event stream
    /// (<see cref="IpyRpcHttpOptions.EventsPath"/>, <c>/events</c>) of <paramref name="server"/>.
    /// The returned builder configures all three, so ASP.NET Core conventions chain:
    /// <c>app.MapIpyRpc(server).RequireAuthorization("callers");</c> (the caller's <c>HttpContext.User</c>
    /// becomes its connection's principal).
    /// </summary>
    public static IEndpointConventionBuilder MapIpyRpc(this IEndpointRouteBuilder endpoints, IpyRpc.IpyRpcServer server, IpyRpcHttpOptions? options = null)
    {
        options ??= new IpyRpcHttpOptions();
        var json = new JsonRpcEndpoint(server, options);
        var binary = new BinaryEndpoint(server, options);
        endpoints.ServiceProvider.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(() => binary.DisposeAsync().AsTask().GetAwaiter().GetResult());
        // Web pages of other origins are refused before anything else (BrowserGuard); other clients pass untouched.
        var guard = new BrowserGuard(options);
        IEndpointConventionBuilder jsonEndpoint = endpoints.Map(options.JsonRpcPath, guard.Wrap(json.HandleAsync, json: true)).WithMetadata(new IpyRpcEndpointMetadata(IpyRpcEndpointKind.JsonRpc));
        IEndpointConventionBuilder binaryEndpoint = endpoints.Map(options.BinaryPath, guard.Wrap(binary.HandleAsync, json: false)).WithMetadata(new IpyRpcEndpointMetadata(IpyRpcEndpointKind.Binary));
        var events = new EventStreamEndpoint(server, options);
        endpoints.ServiceProvider.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(events.Stop);
        IEndpointConventionBuilder eventsEndpoint = endpoints.Map(options.EventsPath, guard.Wrap(events.HandleAsync, json: true, eventStream: true)).WithMetadata(new IpyRpcEndpointMetadata(IpyRpcEndpointKind.Events));
        // Values kept for pointers, at their pointers' own paths: GET (or HEAD) {BinaryPath}/data/{id} with the key in a header.
        string dataPath = options.BinaryPath.TrimEnd('/') + "/data/";
        endpoints.MapMethods(dataPath + "{id}", [HttpMethods.Get, HttpMethods.Head, HttpMethods.Options],
            guard.Wrap(context => HttpMethods.IsOptions(context.Request.Method)
                ? Results.StatusCode(StatusCodes.Status405MethodNotAllowed).ExecuteAsync(context) // (a listed origin's preflight is answered by the guard)
                : DataEndpoint.GetAsync(context, server, dataPath + context.Request.RouteValues["id"]), json: false));
        return new All([jsonEndpoint, binaryEndpoint, eventsEndpoint]);
    }

    /// <summary>
    /// Makes ASP.NET Core's authorization refusals (401, 403) on IpyRpc endpoints speak IpyRpc: a
    /// framed <c>unauthorized</c> error on the binary endpoint, a JSON-RPC error object (code -32004) on
    /// the JSON-RPC one, with the status code kept. Call it when the app uses <c>RequireAuthorization</c>.
    /// </summary>
    public static IServiceCollection AddIpyRpcHttp(this IServiceCollection services)
    {
        services.TryAddSingleton<AuthorizationMiddlewareResultHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, IpyRpcAuthorizationResultHandler>();
        return services;
    }

    private sealed class All(IEndpointConventionBuilder[] builders) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (IEndpointConventionBuilder b in builders) b.Add(convention);
        }

        public void Finally(Action<EndpointBuilder> finallyConvention)
        {
            foreach (IEndpointConventionBuilder b in builders) b.Finally(finallyConvention);
        }
    }
}
