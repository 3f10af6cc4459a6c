using IpyRpc.Tests.Calls;

namespace IpyRpc.Http.Tests;

public sealed class WebSocketCallStartTests : CallStartContract
{
    protected override async Task<(IpyRpcClient Client, IAsyncDisposable Host)> OpenAsync(IpyRpcServer server)
    {
        IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
        return (await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.WebSocket), host);
    }
}

public sealed class RequestsCallStartTests : CallStartContract
{
    // Each call is a request of its own: a cancel (the call's request aborted) is not ordered with a ping.
    protected override bool Ordered => false;

    protected override async Task<(IpyRpcClient Client, IAsyncDisposable Host)> OpenAsync(IpyRpcServer server)
    {
        IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
        return (await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests), host);
    }
}
