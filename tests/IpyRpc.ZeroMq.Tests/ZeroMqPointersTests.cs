using IpyRpc.Tests.Pointers;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqPointersTests : PointersContract
{
    protected override string Protocol => "zmq";

    protected override Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server) => Task.FromResult<IAsyncDisposable?>(IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*"));

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, IAsyncDisposable? host, IpyRpcClientOptions options)
        => IpyRpcZeroMqClient.ConnectAsync(((IpyRpcZeroMqServer)host!).Endpoint, options);
}
