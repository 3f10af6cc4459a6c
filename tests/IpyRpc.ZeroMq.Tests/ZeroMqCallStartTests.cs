using IpyRpc.Tests.Calls;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqCallStartTests : CallStartContract
{
    protected override async Task<(IpyRpcClient Client, IAsyncDisposable Host)> OpenAsync(IpyRpcServer server)
    {
        IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        return (await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { Output = (_, _) => { } }), host);
    }
}
