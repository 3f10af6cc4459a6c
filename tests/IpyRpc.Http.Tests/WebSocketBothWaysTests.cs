using IpyRpc.Http;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Http.Tests;

public sealed class WebSocketBothWaysTests : BothWaysContract
{
    private IpyRpcHttpServer? _host;

    protected override string Transport => "websocket";

    protected override async Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server)
    {
        _host = await IpyRpcHttpServer.StartAsync(server);
        return _host;
    }

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcHttpClient.ConnectAsync(_host!.Address, HttpCarrier.WebSocket, options);
}
