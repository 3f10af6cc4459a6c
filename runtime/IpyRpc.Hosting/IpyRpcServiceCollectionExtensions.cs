using IpyRpc;
using IpyRpc.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds IpyRpc to a Generic Host (or an ASP.NET Core app).</summary>
public static class IpyRpcServiceCollectionExtensions
{
    /// <summary>
    /// Adds an <see cref="IpyRpcServer"/> singleton configured from the <c>IpyRpc</c> section of the
    /// app's configuration (<see cref="IpyRpcHostingOptions"/>, glob config included), whose exported
    /// services come from dependency injection with a scope per call, and a hosted service that starts
    /// its ZeroMQ endpoints and, on shutdown (Ctrl+C, SIGTERM), lets running calls finish within
    /// <see cref="IpyRpcHostingOptions.ShutdownTimeout"/>. For HTTP, map it in the app:
    /// <c>app.MapIpyRpc(app.Services.GetRequiredService&lt;IpyRpcServer&gt;())</c>.
    /// </summary>
    public static IpyRpcHostBuilder AddIpyRpc(this IServiceCollection services, Action<IpyRpcHostingOptions>? configure = null)
    {
        var builder = new IpyRpcHostBuilder(services);
        services.AddOptions<IpyRpcHostingOptions>().BindConfiguration(IpyRpcHostingOptions.Section);
        if (configure is not null) services.Configure(configure);
        services.TryAddSingleton(sp => builder.CreateServer(sp));
        services.AddHostedService(sp => new IpyRpcHostedService(sp.GetRequiredService<IpyRpcServer>(), sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<IpyRpcHostingOptions>>().Value));
        return builder;
    }
}
