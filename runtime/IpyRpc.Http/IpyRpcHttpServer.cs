using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
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
        // The embedded host must not swallow Ctrl+C/SIGTERM (the console lifetime would, and then only
        // stop a host nobody waits on): signals keep their default, or WaitForShutdownAsync takes them.
        builder.Services.AddSingleton<IHostLifetime, SignalsLeftAlone>();
        builder.WebHost.UseUrls(url);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = null; // the endpoints apply their own limits
            k.AddServerHeader = false;
        });
        WebApplication app = builder.Build();
        options ??= new IpyRpcHttpOptions();
        try
        {
            app.MapIpyRpc(server, options);
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false); // an option out of range, a port taken: nothing is left behind
            throw;
        }

        string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var address = new Uri(bound.EndsWith('/') ? bound : bound + "/");
        // Pointers to this server's values name this address (the host as bound; all interfaces: the advertised host name).
        server.Data.Advertise(new PointerEndpoint(address.Scheme, server.Data.HostToAdvertise(address.Host), address.Port, options.BinaryPath.TrimEnd('/')));
        return new IpyRpcHttpServer(app, address);
    }

    /// <summary>
    /// Completes when the process is asked to stop (Ctrl+C, SIGINT, SIGTERM; the signal is then taken
    /// rather than ending the process) or <paramref name="cancellationToken"/> fires. Serve until then,
    /// then dispose the server so calls in flight finish within the grace period:
    /// <c>await host.WaitForShutdownAsync(); await host.DisposeAsync();</c>. A program that does not
    /// call it ends on those signals as any .NET program does.
    /// </summary>
    public async Task WaitForShutdownAsync(CancellationToken cancellationToken = default)
    {
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.TrySetResult();
        }

        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using CancellationTokenRegistration cancelled = cancellationToken.Register(() => stop.TrySetResult());
        await stop.Task.ConfigureAwait(false);
    }

    private sealed class SignalsLeftAlone : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Stops listening; requests in flight get a short grace period.</summary>
    public async ValueTask DisposeAsync()
    {
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(grace.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
