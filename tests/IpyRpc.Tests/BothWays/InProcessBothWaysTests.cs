using IpyRpc.Tests.BothWays;

namespace IpyRpc.Tests;

public sealed class InProcessBothWaysTests : BothWaysContract
{
    protected override string Transport => "in-process";

    protected override Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server) => Task.FromResult<IAsyncDisposable?>(null);

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions options) => IpyRpcClient.ConnectInProcessAsync(Server, options);
}
