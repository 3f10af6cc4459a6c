using IpyRpc;
using IpyRpc.Http;

namespace IpyRpc.Http.Tests;

/// <summary>A real Kestrel server on a free loopback port, serving the test functions.</summary>
public sealed class HttpFixture : IAsyncLifetime
{
    public IpyRpcServer Server { get; private set; } = null!;

    public IpyRpcHttpServer Host { get; private set; } = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public async Task InitializeAsync()
    {
        Server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 500 });
        Server.Register(typeof(HttpFunctions));
        Host = await IpyRpcHttpServer.StartAsync(Server, "http://127.0.0.1:0", new IpyRpcHttpOptions { MaxJsonRequestBytes = 64 * 1024 });
        Http.BaseAddress = Host.Address;
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Host.DisposeAsync();
        await Server.DisposeAsync();
    }
}
