using IpyRpc;
using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqCallTests
{
    [Fact]
    public async Task CallsWorkOverTcp()
    {
        await using ZmqServer s = ZmqServer.Start();
        Assert.StartsWith("tcp://127.0.0.1:", s.Endpoint);
        Assert.DoesNotContain("*", s.Endpoint);
        await using IpyRpcClient client = await s.ConnectAsync();
        Assert.Contains(client.Functions, f => f.Name == "add" && f.Summary == "Adds two integers.");
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
        Assert.Equal(7, await client.Proxy<ZmqFunctionsClient>().Add(3, 4));
    }

    [Fact]
    public async Task CallsWorkOverIpc()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ipyrpc-{Guid.NewGuid():N}.sock");
        try
        {
            await using ZmqServer s = ZmqServer.Start("ipc://" + path);
            Assert.Equal("ipc://" + path, s.Endpoint);
            await using IpyRpcClient client = await s.ConnectAsync();
            Assert.Equal(42, await client.CallAsync<int>("add", 40, 2));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task ARemoteExceptionArrivesWithItsInnerChain()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        var e = await Assert.ThrowsAsync<RemoteException>(() => client.CallAsync<object>("fail", "zmq boom"));
        Assert.Equal("System.InvalidOperationException", e.RemoteType);
        Assert.Equal("zmq boom", e.RemoteMessage);
        Assert.Equal("System.ArgumentException", Assert.IsType<RemoteException>(e.InnerException).RemoteType);
        Assert.Equal(2, await client.CallAsync<int>("add", 1, 1));
    }

    [Fact]
    public async Task OutputArrivesLiveAndInOrder()
    {
        await using ZmqServer s = ZmqServer.Start();
        var lines = new List<string>();
        await using IpyRpcClient client = await s.ConnectAsync(new IpyRpcClientOptions { Output = (_, t) => { lock (lines) lines.Add(t); } });
        Assert.Equal(200, await client.CallAsync<int>("count_lines", 200));
        Assert.Equal(Enumerable.Range(1, 200).Select(i => $"line {i}{Environment.NewLine}"), lines);

        string gate = Gates.NewName("zmq-live");
        var first = new TaskCompletionSource();
        Task<string> call = client.CallAsync<string>("print_wait_print", [gate], new CallOptions { Output = (_, _) => first.TrySetResult() });
        await first.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(call.IsCompleted);
        Gates.Open(gate);
        Assert.Equal("done", await call);
    }

    [Fact]
    public async Task AThousandConcurrentCallsFromTenClientsAreAllAnsweredCorrectly()
    {
        // A hundred in flight per client, on purpose: above the default per-connection limit.
        await using ZmqServer s = ZmqServer.Start(serverOptions: new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 200 });
        IpyRpcClient[] clients = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => s.ConnectAsync()));
        try
        {
            Task<int>[] calls = [.. Enumerable.Range(0, 1000).Select(i => clients[i % 10].CallAsync<int>("add", i, 1000 * (i % 10)))];
            int[] results = await Task.WhenAll(calls);
            for (int i = 0; i < 1000; i++) Assert.Equal(i + (1000 * (i % 10)), results[i]);
            Assert.Equal(10, s.Host.Peers);
        }
        finally
        {
            foreach (IpyRpcClient c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task AHundredMegabyteByteArrayAndDoubleArrayRoundTrip()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        byte[] bytes = new byte[100 * 1024 * 1024];
        Random.Shared.NextBytes(bytes);
        byte[] back = await client.CallAsync<byte[]>("echo_bytes", bytes);
        Assert.True(bytes.AsSpan().SequenceEqual(back));

        double[] doubles = new double[100 * 1024 * 1024 / 8];
        for (int i = 0; i < doubles.Length; i++) doubles[i] = i * 0.25;
        double[] doublesBack = await client.Proxy<ZmqFunctionsClient>().EchoDoubles(doubles);
        Assert.True(doubles.AsSpan().SequenceEqual(doublesBack));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ManyLargeCallsAtOnceComeBackIntactThroughPooledBuffers(bool aboveTheSharedPoolsSize)
    {
        // Large frames are received into pooled arrays and the client's arguments encoded into one, sent without a
        // copy: each goes back only when libzmq has sent it or its last reader is done. One given back early would be
        // rented by another call and overwritten while still sent or read, and some echo would come back different.
        // Arrays above PooledParts.MaxPooled go to a store of their own, which hands one to the next call of about its
        // size at once.
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        (int tasks, int callsEach, int minBytes, int maxBytes) = aboveTheSharedPoolsSize
            ? (3, 4, PooledParts.MaxPooled + 1, 2 * PooledParts.MaxPooled)
            : (6, 25, 70_000, 400_000);
        // Four arrays a call: the client's arguments (sent), the server's received copy (its job ended), the server's
        // encoded result (sent, and released by the queue), the reply (decoded).
        await LargeEchoes.RunAsync((data, _) => client.CallAsync<byte[]?>("echo_bytes", data), tasks, callsEach, seed: 100, arraysPerCall: 4, minBytes, maxBytes);
    }

    [Fact]
    public async Task CancellationReachesTheServer()
    {
        await using ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync();
        string gate = Gates.NewName("zmq-cancel");
        using var cts = new CancellationTokenSource();
        Task<int> call = client.CallAsync<int>("wait", [gate], null, cts.Token);
        await Gates.WaitAsync(gate + ".started");
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Gates.WaitAsync(gate + ".cancelled"); // the function's token fired on the server
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, int seconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail("The condition did not become true in time.");
            await Task.Delay(20);
        }
    }
}
