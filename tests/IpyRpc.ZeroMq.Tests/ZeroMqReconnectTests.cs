using IpyRpc.Tests.BothWays;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqReconnectTests : ReconnectContract
{
    private readonly string _endpoint = $"tcp://127.0.0.1:{FreePort()}";

    protected override Task<IAsyncDisposable> ServeAsync(IpyRpcServer server) => Task.FromResult<IAsyncDisposable>(IpyRpcZeroMqServer.Start(server, _endpoint));

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcZeroMqClient.ConnectAsync(_endpoint, options);
}

public sealed class ZeroMqEventResumeTests : EventResumeContract
{
    private readonly string _endpoint = $"tcp://127.0.0.1:{FreePort()}";

    protected override Task<IAsyncDisposable> ServeAsync(IpyRpcServer server) => Task.FromResult<IAsyncDisposable>(IpyRpcZeroMqServer.Start(server, _endpoint));

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcZeroMqClient.ConnectAsync(_endpoint, options);
}
