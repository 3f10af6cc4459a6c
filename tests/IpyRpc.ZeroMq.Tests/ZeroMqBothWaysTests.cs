using IpyRpc.Tests.BothWays;
using IpyRpc.ZeroMq;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqBothWaysTests : BothWaysContract
{
    private IpyRpcZeroMqServer? _host;

    protected override string Transport => "zeromq";

    protected override Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server)
    {
        _host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        return Task.FromResult<IAsyncDisposable?>(_host);
    }

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcZeroMqClient.ConnectAsync(_host!.Endpoint, options);
}
