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
    public async Task TheTimeToLiveComesFromTheCallThenTheConfigThenTheStore()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { DataStore = new IpyRpcDataStore(new DataStoreOptions { DefaultTimeToLive = TimeSpan.FromMinutes(7) }) });
        server.Config(new() { ["ptr.*"] = new() { ReturnPointer = true, PointerTimeToLive = TimeSpan.FromMinutes(3) }, ["ptr.text"] = new() { ReturnPointer = true, PointerTimeToLive = null } });
        server.Register(typeof(PointerFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

        var configured = (RemotePointer)(await client.CallAsync("ptr.range", 3))!;
        Assert.InRange(configured.ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2.9), TimeSpan.FromMinutes(3));
        var asked = (RemotePointer)(await client.CallAsync<object?>("ptr.range", [3], new CallOptions { PointerTimeToLive = TimeSpan.FromSeconds(30) }))!;
        Assert.InRange(asked.ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromSeconds(29), TimeSpan.FromSeconds(30));
        var forever = (RemotePointer)(await client.CallAsync<object?>("ptr.range", [3], new CallOptions { PointerTimeToLive = Timeout.InfiniteTimeSpan }))!;
        Assert.Null(forever.ExpiresAt);
        var storeDefault = (RemotePointer)(await client.CallAsync("ptr.text"))!;
        Assert.InRange(storeDefault.ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(2.9), TimeSpan.FromMinutes(3)); // the ptr.* rule still applies: unset does not override
        Assert.Equal(3, await client.CallAsync<int>("ptr.count", configured));
        server.Data.Dispose();
    }

    [Fact]
    public async Task APointerPassedToAJsonOnlyFunctionIsResolvedThere()
    {
        await using var server = new IpyRpcServer();
        server.Config(new() { ["ptr.sum"] = new() { InputSerialization = Serialization.Json } });
        server.Register(typeof(PointerFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

        RemotePointer<double[,]> matrix = await client.AsPointerAsync(() => client.CallAsync<double[,]>("ptr.matrix", 3, 2));
        Assert.Equal(15.0, await client.CallAsync<double>("ptr.sum", matrix)); // sent in JSON, which it alone accepts
        server.Data.Dispose();
    }

    [Fact]
    public async Task WithoutAnyTimeToLiveTheStoresDefaultApplies()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { DataStore = new IpyRpcDataStore(new DataStoreOptions { DefaultTimeToLive = TimeSpan.FromMinutes(7) }) });
        server.Register(typeof(PointerFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        RemotePointer<List<int>> pointer = await client.CallPointerAsync<List<int>>("ptr.range", 3);
        Assert.InRange(pointer.ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(6.9), TimeSpan.FromMinutes(7));
        server.Data.Dispose();
    }

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
    }

    [Fact]
    public async Task TrustedHoldersAreCheckedWhenTheServerOrWorkerIsMade()
    {
        var e = Assert.Throws<ArgumentException>(() => new IpyRpcServer(new IpyRpcServerOptions { TrustedHolders = ["zmq://10.0.0.[1-3:5601"] }));
        Assert.Contains("TrustedHolders has the pattern \"zmq://10.0.0.[1-3:5601\"", e.Message);
        await using var queue = new IpyRpc.Jobs.InMemoryJobQueue();
        e = Assert.Throws<ArgumentException>(() => new IpyRpcWorker(queue, new IpyRpcWorkerOptions { TrustedHolders = [" "] }));
        Assert.Contains("it is empty", e.Message);
        e = Assert.Throws<ArgumentException>(() => new IpyRpcServer(new IpyRpcServerOptions { TrustedHolders = ["10.0.0.5:5601"] }));
        Assert.Contains("it names no protocol", e.Message);
        await using var any = new IpyRpcServer(new IpyRpcServerOptions { TrustedHolders = ["*", "http://data.example.com:443/ipyrpc"] });
    }

    [Fact]
    public async Task APointerIsSealedWithItsServersQueueKeyAndTheSealCoversEveryAddress()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<List<int>> pointer = await client.CallPointerAsync<List<int>>("ptr.range", 3);
        Assert.True(PointerSeal.Verify(Server.Queue.PointerKey.Span, pointer));
        await using var other = new IpyRpc.Jobs.InMemoryJobQueue();
        Assert.False(PointerSeal.Verify(other.PointerKey.Span, pointer));

        var alternates = new List<PointerEndpoint> { new("zmq", "10.0.0.7", 5601) };
        string seal = PointerSeal.Compute(Server.Queue.PointerKey.Span, pointer.Holder, pointer.Path, pointer.Endpoint, alternates);
        RemotePointer sealedWithAlternate = Changed(pointer, alternates: alternates, seal: seal);
        Assert.True(PointerSeal.Verify(Server.Queue.PointerKey.Span, sealedWithAlternate));
        foreach (RemotePointer changed in new RemotePointer[]
        {
            Changed(sealedWithAlternate, alternates: [new("zmq", "10.0.0.8", 5601)]),
            Changed(sealedWithAlternate, alternates: []),
            Changed(sealedWithAlternate, port: 5602),
            Changed(sealedWithAlternate, host: "10.0.0.9"),
            Changed(sealedWithAlternate, path: "/other" + pointer.Path),
            Changed(sealedWithAlternate, holder: new string('0', 32)),
            Changed(sealedWithAlternate, seal: seal[..^1] + (seal[^1] == '0' ? '1' : '0')),
        })
        {
            Assert.False(PointerSeal.Verify(Server.Queue.PointerKey.Span, changed));
        }

        Assert.Equal(seal, RemotePointer.FromMap(sealedWithAlternate.ToMap())!.Seal); // it travels with the pointer
    }

    private static RemotePointer Changed(RemotePointer p, string? host = null, int? port = null, string? path = null, string? holder = null, IReadOnlyList<PointerEndpoint>? alternates = null, string? seal = null) => new()
    {
        Protocol = p.Protocol, Host = host ?? p.Host, Port = port ?? p.Port, Path = path ?? p.Path, SecretKey = p.SecretKey,
        Holder = holder ?? p.Holder, Alternates = alternates ?? p.Alternates, Seal = seal ?? p.Seal,
    };
}
