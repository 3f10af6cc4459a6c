using IpyRpc.Protocol;
using IpyRpc.Tests.Pointers;

namespace IpyRpc.Tests;

public sealed class InProcessPointersTests : PointersContract
{
    protected override string Protocol => PointerEndpoint.InProcess;

    protected override Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server) => Task.FromResult<IAsyncDisposable?>(null);

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, IAsyncDisposable? host, IpyRpcClientOptions options) => IpyRpcClient.ConnectInProcessAsync(server, options);

    private Task<IpyRpcClient> ConnectAsync() => IpyRpcClient.ConnectInProcessAsync(Server, new IpyRpcClientOptions { Output = (_, _) => { } });

    [Fact]
    public async Task AMalformedFetchGetsASpecificErrorAndTheConnectionGoesOn()
    {
        await using IpyRpcClient client = await ConnectAsync();
        var e = await Assert.ThrowsAsync<IpyRpcProtocolException>(() => client.RequestAsync(
            new IpyRpcMessage { Kind = MessageKind.Fetch, Parts = [IpyRpc.Jobs.JobCodec.Encode(new Dictionary<string, object?> { ["secret_key"] = "00" }, Serialization.MessagePack)] }, "fetch", null, CancellationToken.None));
        Assert.Contains("\"path\"", e.Message);
        var unknown = await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => client.RequestAsync(
            new IpyRpcMessage { Kind = MessageKind.Fetch, Parts = [IpyRpc.Jobs.JobCodec.Encode(new Dictionary<string, object?> { ["path"] = "/data/feed", ["secret_key"] = new string('0', 32) }, Serialization.MessagePack)] }, "fetch", null, CancellationToken.None));
        Assert.Contains("No value is held at /data/feed", unknown.Message);
        Assert.Equal(3, (await client.CallAsync<List<int>>("ptr.range", 3)).Count);
    }}
