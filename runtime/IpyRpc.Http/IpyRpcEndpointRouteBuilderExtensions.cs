using IpyRpc.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Adds IpyRpc's endpoints to an ASP.NET Core application.</summary>
public static class IpyRpcEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps the JSON-RPC 2.0 endpoint (<see cref="IpyRpcHttpOptions.JsonRpcPath"/>, <c>/rpc</c>) and the
    /// binary protocol endpoint (<see cref="IpyRpcHttpOptions.BinaryPath"/>, <c>/ipyrpc</c>) of <paramref name="server"/>.
    /// </summary>
    public static IEndpointRouteBuilder MapIpyRpc(this IEndpointRouteBuilder endpoints, IpyRpc.IpyRpcServer server, IpyRpcHttpOptions? options = null)
    {
        options ??= new IpyRpcHttpOptions();
        var json = new JsonRpcEndpoint(server, options);
        var binary = new BinaryEndpoint(server);
        endpoints.Map(options.JsonRpcPath, json.HandleAsync);
        endpoints.Map(options.BinaryPath, binary.HandleAsync);
        return endpoints;
    }
}
