namespace IpyRpc.Tests.Calls;

public sealed class InProcessCallStartTests : CallStartContract
{
    private sealed class Nothing : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => default;
    }

    protected override async Task<(IpyRpcClient Client, IAsyncDisposable Host)> OpenAsync(IpyRpcServer server)
        => (await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } }), new Nothing());
}
