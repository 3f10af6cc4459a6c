using IpyRpc;

namespace IpyRpc.ZeroMq.Tests;

[CollectionDefinition(nameof(Serial), DisableParallelization = true)]
public sealed class Serial;

/// <summary>Runs alone, so the process-wide counts it reads belong to it.</summary>
[Collection(nameof(Serial))]
public sealed class ZeroMqLifetimeTests
{
    private static int LibZmqThreads() => Directory.GetDirectories("/proc/self/task").Count(t => ThreadName(t).StartsWith("ZMQbg", StringComparison.Ordinal));

    // A thread listed a moment ago may have ended before its name is read (the runtime's threads come and go): it is none of libzmq's then.
    private static string ThreadName(string task)
    {
        try
        {
            return File.ReadAllText(Path.Combine(task, "comm"));
        }
        catch (IOException)
        {
            return "";
        }
    }

    [Fact]
    public async Task DisposingClientsAndServerReleasesEverySocketContextAndThread()
    {
        int zmqThreadsBefore = LibZmqThreads();
        (int contexts, int sockets, int threads) before = (ZeroMqDiagnostics.LiveContexts, ZeroMqDiagnostics.LiveSockets, ZeroMqDiagnostics.LiveThreads);

        ZmqServer s = ZmqServer.Start();
        IpyRpcClient[] clients = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => s.ConnectAsync()));
        foreach (IpyRpcClient c in clients) Assert.Equal(2, await c.CallAsync<int>("add", 1, 1));
        Assert.Equal(before.contexts + 4, ZeroMqDiagnostics.LiveContexts);
        // Two I/O threads for the server and for each client: one receives while the other may be lent (ReplyHandoff).
        Assert.Equal(before.threads + 2 + (2 * 3), ZeroMqDiagnostics.LiveThreads);
        Assert.True(LibZmqThreads() > zmqThreadsBefore);

        foreach (IpyRpcClient c in clients) await c.DisposeAsync();
        await s.DisposeAsync();

        await ZeroMqCallTests.WaitUntilAsync(() => ZeroMqDiagnostics.LiveThreads == before.threads);
        Assert.Equal(before, (ZeroMqDiagnostics.LiveContexts, ZeroMqDiagnostics.LiveSockets, ZeroMqDiagnostics.LiveThreads));
        await ZeroMqCallTests.WaitUntilAsync(() => LibZmqThreads() == zmqThreadsBefore);
    }

    [Fact]
    public async Task BindingAnEndpointInUseIsAClearError()
    {
        await using var server = new IpyRpcServer();
        IpyRpcZeroMqServer first = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        try
        {
            var e = Assert.Throws<IOException>(() => IpyRpcZeroMqServer.Start(server, first.Endpoint));
            Assert.Contains("could not bind " + first.Endpoint, e.Message);
            Assert.Contains("Address already in use", e.Message);
        }
        finally
        {
            await first.DisposeAsync();
        }
    }
}
