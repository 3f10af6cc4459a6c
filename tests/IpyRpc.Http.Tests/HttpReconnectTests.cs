using IpyRpc.Tests.BothWays;

namespace IpyRpc.Http.Tests;

public sealed class WebSocketReconnectContractTests : ReconnectContract
{
    private readonly string _url = $"http://127.0.0.1:{FreePort()}";

    protected override async Task<IAsyncDisposable> ServeAsync(IpyRpcServer server) => await IpyRpcHttpServer.StartAsync(server, _url);

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcHttpClient.ConnectAsync(new Uri(_url), HttpCarrier.WebSocket, options);
}

public sealed class HttpRequestsReconnectTests : ReconnectContract
{
    private readonly string _url = $"http://127.0.0.1:{FreePort()}";

    protected override async Task<IAsyncDisposable> ServeAsync(IpyRpcServer server) => await IpyRpcHttpServer.StartAsync(server, _url);

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcHttpClient.ConnectAsync(new Uri(_url), HttpCarrier.Requests, options);

    protected override bool CarriesEvents => false;
}

public sealed class WebSocketEventResumeTests : EventResumeContract
{
    private readonly string _url = $"http://127.0.0.1:{FreePort()}";

    // Without the event stream's history (which would make the server keep more than the test's EventHistory).
    protected override async Task<IAsyncDisposable> ServeAsync(IpyRpcServer server) => await IpyRpcHttpServer.StartAsync(server, _url, new IpyRpcHttpOptions { EventStreamHistory = 0 });

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcHttpClient.ConnectAsync(new Uri(_url), HttpCarrier.WebSocket, options);
}
