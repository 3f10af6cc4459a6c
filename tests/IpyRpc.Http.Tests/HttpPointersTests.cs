using IpyRpc.Tests.Pointers;

namespace IpyRpc.Http.Tests;

public sealed class HttpPointersTests : PointersContract
{
    protected override string Protocol => "http";

    protected override async Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server) => await IpyRpcHttpServer.StartAsync(server);

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, IAsyncDisposable? host, IpyRpcClientOptions options)
        => IpyRpcHttpClient.ConnectAsync(((IpyRpcHttpServer)host!).Address, HttpCarrier.WebSocket, options);
}
