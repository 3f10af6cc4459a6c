namespace IpyRpc.Http.Tests;

/// <summary>The Python client's JSON-RPC class (standard library only) against a real Kestrel server.</summary>
public sealed class PythonJsonRpcClientTests
{
    [Fact]
    public async Task ThePythonJsonRpcClientCallsStreamsSubmitsFetchesAndTypesWithTheStandardLibraryAlone()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions)).Register(typeof(IpyRpc.Tests.Pointers.PointerFunctions)).Register(typeof(IpyRpc.Tests.MatrixFunctions));
        server.Config(new() { ["ptr.matrix"] = new() { ReturnPointer = true } });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);

        (int code, string stdout, string stderr) = await PythonPeer.RunAsync("stdlib_only.py", host.Address.ToString());
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("zeromq client: IpyRpcClient needs pyzmq and msgpack", stdout); // neither was importable
        Assert.Contains("signature: (a: 'int', b: 'int') -> 'int' | Adds two integers.", stdout);
        Assert.Contains("add: 5 scale: 8.0", stdout);
        Assert.Contains("failed: remote_exception System.InvalidOperationException from json-rpc | printed live: [('stdout', 'about to fail\\n')]", stdout);
        Assert.Contains("stream: [0, 1, 2, 3]", stdout);
        Assert.Contains("job: 11 succeeded True", stdout);
        Assert.Contains("stream job: [0, 1, 2]", stdout);
        Assert.Contains("live stream: 0 3000", stdout);
        Assert.Contains("progress over json-rpc: worked 3 [1, 2, 3]", stdout);
        Assert.Contains("pointer: ipyrpc_data_pointer [3, 2] ndarray [[2.0, 3.0], [4.0, 5.0]] True", stdout);
        Assert.Contains("typed: [datetime.date(2027, 1, 1), datetime.time(0, 15), datetime.datetime(2026, 12, 7, 17, 30, 5, tzinfo=datetime.timezone.utc), "
            + "Decimal('25.00'), datetime.timedelta(days=1, seconds=5400), {datetime.date(2026, 12, 31): Decimal('12.50')}]", stdout);
        Assert.Contains("asked for a pointer: int 42", stdout);
        Assert.Contains("unknown: unknown_function", stdout);
    }

    [Fact]
    public async Task ThePythonJsonRpcClientHearsTheServersEventsFromItsEventStream()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);

        Task<(int Code, string Stdout, string Stderr)> running = PythonPeer.RunAsync("events_over_http.py", host.Address.ToString());
        // Published before the stream subscribed, an event reaches nobody: the first one queued for it is the first it hears.
        while (server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Other, "first") == 0)
        {
            Assert.False(running.IsCompleted, running.IsCompleted ? (await running).Stdout + (await running).Stderr : "");
            await Task.Delay(50);
        }

        server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Ticked, new IpyRpc.Tests.BothWays.Tick(7, "seven"));
        server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Other, "third");
        (int code, string stdout, string stderr) = await running;
        Assert.True(code == 0, stdout + stderr);
        Assert.Equal(
            [
                "event: bw.other first",
                "event: bw.ticked {'number': 7, 'note': 'seven'}",
                "event: bw.other third",
                "refused: not_found | No event matches 'nothing.*'. This server publishes: bw.other, bw.ticked.",
            ],
            stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task ThePythonClientsEventLoopConnectsAgainWhenItsConnectionDropsAndHearsWhatItMissed()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { EventHistory = 0 }); // the stream's four are all it keeps
        server.Register(typeof(IpyRpc.Tests.BothWays.BothWaysEvents));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { EventStreamHistory = 4 });
        await using var proxy = TcpProxy.Start(host.Address.Port, recording: true);

        Task<(int Code, string Stdout, string Stderr)> running = PythonPeer.RunAsync("events_resumed.py", new UriBuilder(host.Address) { Port = proxy.Port }.Uri.ToString(), "17");
        int tick = 0, published = 0;
        while (Publish() == 0) // tick 0, published before the stream subscribed, reaches nobody; the one after is heard
        {
            tick = 0;
            Assert.False(running.IsCompleted, running.IsCompleted ? (await running).Stdout + (await running).Stderr : "");
            await Task.Delay(50);
        }

        for (int i = 1; i <= 3; i++) Publish();
        await Relayed(3);

        // The connection drops and the network refuses connections a while: 4 and 5 are published meanwhile.
        Drop();
        Publish();
        Publish();
        proxy.Refusing = false;
        await Relayed(5);
        Publish();
        await Relayed(6);

        // Again, while ten are published: the server keeps four, so the loop is told the rest are gone.
        Drop();
        for (int i = 7; i <= 16; i++) Publish();
        proxy.Refusing = false;
        await Relayed(16);
        Publish();

        (int code, string stdout, string stderr) = await running;
        Assert.True(code == 0, stdout + stderr);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal([.. new[] { 0, 1, 2, 3, 4, 5, 6, 13, 14, 15, 16, 17 }.Select(n => $"tick {n}")], lines[..^2]);
        Assert.Matches("^missed 1 \\| The server keeps its last 4 events \\(16 MiB of payloads at most\\), and more were published after '[0-9a-f]{8}-[0-9]+': some events this stream would have had are lost\\.$", lines[^2]);
        Assert.Equal($"last id {published}", lines[^1]); // the numbers count every event published, those that reached nobody too

        void Drop()
        {
            proxy.Refusing = true;
            proxy.CloseAll(); // after what it passed on: the client reads that, then the end
        }

        int Publish()
        {
            published++;
            return server.Publish(IpyRpc.Tests.BothWays.BothWaysEvents.Ticked, new IpyRpc.Tests.BothWays.Tick(tick++, ""));
        }

        async Task Relayed(int number)
        {
            using var giveUp = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!proxy.PassedToClients($"\"number\":{number},"))
            {
                Assert.False(running.IsCompleted, running.IsCompleted ? (await running).Stdout + (await running).Stderr : "");
                await Task.Delay(20, giveUp.Token);
            }
        }
    }
}
