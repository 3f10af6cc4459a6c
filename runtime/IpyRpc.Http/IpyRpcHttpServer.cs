using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Http;

/// <summary>
/// Serves an <see cref="IpyRpcServer"/> over HTTP on Kestrel: JSON-RPC 2.0 at <c>/rpc</c> and the
/// binary protocol at <c>/ipyrpc</c>. For an existing ASP.NET Core app, use <c>app.MapIpyRpc(server)</c> instead.
/// </summary>
public sealed class IpyRpcHttpServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private IpyRpcHttpServer(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>Where the server listens (with the real port when port 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>The JSON-RPC endpoint's full address.</summary>
    public Uri JsonRpcAddress => new(Address, "rpc");

    /// <summary>Starts listening on <paramref name="url"/> (for example <c>http://127.0.0.1:0</c> for any free port).</summary>
    /// <exception cref="InvalidOperationException"><paramref name="url"/> is reachable from other machines and nothing authenticates callers (see <see cref="IpyRpcServerOptions.SharedSecret"/>).</exception>
    public static async Task<IpyRpcHttpServer> StartAsync(IpyRpcServer server, string url = "http://127.0.0.1:0", IpyRpcHttpOptions? options = null, CancellationToken cancellationToken = default)
    {
        server.EnsureMayListen(url, transportAuthenticates: false, "HTTP authentication (host IpyRpc in your ASP.NET Core app with app.MapIpyRpc(server).RequireAuthorization())");
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders(); // the host's logs must not mix with calls' captured output
        builder.WebHost.UseUrls(url);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null; // the endpoints apply their own limits
            k.AddServerHeader = false;
        });
        WebApplication app = builder.Build();
        app.MapIpyRpc(server, options);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new IpyRpcHttpServer(app, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
    }

    /// <summary>Stops listening; requests in flight get a short grace period.</summary>
    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(grace.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
