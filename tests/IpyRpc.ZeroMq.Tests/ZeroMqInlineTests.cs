using IpyRpc;
using IpyRpc.Jobs;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>Functions that say which thread runs them.</summary>
public static class ThreadFunctions
{
    /// <summary>The name of the thread running this call.</summary>
    [IpyRpcExport("thread.name")]
    public static string Name() => Thread.CurrentThread.Name ?? "";
}

public sealed class ZeroMqInlineTests
{
    [Fact]
    public async Task AnInlineFunctionRunsOnTheServersSocketThreadAndOthersOnWorkers()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ThreadFunctions)).Register(typeof(ZmqFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint);

        // Without the option the call is handed to one of the queue's workers: it runs on a thread-pool thread, or
        // on the server's I/O thread that received it, lent to that worker (ServerLendingTests).
        Assert.Contains(await client.CallAsync<string>("thread.name"), new[] { ".NET TP Worker", "IpyRpc.ZeroMq server tcp://127.0.0.1:*" });
        JobInfo plain = Assert.Single(await server.Queue.ListAsync(new JobQuery { Function = "thread.name" }));
        Assert.DoesNotContain(":inline", plain.Worker ?? "", StringComparison.Ordinal);

        server.Config(new GlobConfig { ["thread.*"] = new() { Inline = true } });
        Assert.Equal("IpyRpc.ZeroMq server tcp://127.0.0.1:*", await client.CallAsync<string>("thread.name"));

        // Calls of other functions still run, concurrently, while inline ones are answered in between (within
        // the connection's limit of calls in flight, which counts inline calls too).
        Task<int>[] calls = [.. Enumerable.Range(0, 15).Select(i => client.CallAsync<int>("add", i, 1))];
        string[] names = await Task.WhenAll(Enumerable.Range(0, 15).Select(_ => client.CallAsync<string>("thread.name")));
        Assert.Equal(Enumerable.Range(1, 15), await Task.WhenAll(calls));
        Assert.All(names, n => Assert.Equal("IpyRpc.ZeroMq server tcp://127.0.0.1:*", n));
    }
}
