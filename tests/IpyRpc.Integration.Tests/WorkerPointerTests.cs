using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// Pointers held by worker processes: the server that took the calls never holds the values; the
/// caller fetches (and slices) straight from the worker that computed them, a pointer passed back
/// resolves on that worker in place, and another worker fetches it from the holder directly.
/// </summary>
public sealed class WorkerPointerTests : IAsyncLifetime
{
    private const int Rows = 10_000, Cols = 8; // 640,000 bytes of doubles
    private readonly string _folder = Directory.CreateTempSubdirectory("ipyrpc-pointers-").FullName;
    private readonly List<IAsyncDisposable> _cleanup = [];
    private IpyRpcServer _server = null!;
    private IpyRpcZeroMqServer _host = null!;
    private WorkerProcess _holder = null!, _other = null!;

    private string File => Path.Combine(_folder, "jobs.db");

    public async Task InitializeAsync()
    {
        // Two queues in one store: "a" is the holder's, "b" another worker's; ptr.sum and ptr.pid run on "b".
        var a = new SqliteJobQueue(File, new SqliteJobQueueOptions { Name = "a" });
        var b = new SqliteJobQueue(File, new SqliteJobQueueOptions { Name = "b" });
        _server = new IpyRpcServer(new IpyRpcServerOptions { Queue = a, AdditionalQueues = [b], Concurrency = 0 });
        _server.Config(new() { ["ptr.sum"] = new() { Queue = "b" }, ["ptr.pid"] = new() { Queue = "b" }, ["ptr.rowsum"] = new() { Queue = "b" } });
        _server.Register(typeof(IpyRpc.Tests.Pointers.PointerFunctions));
        _host = IpyRpcZeroMqServer.Start(_server, "tcp://127.0.0.1:*");
        _holder = await WorkerProcess.StartAsync("--sqlite", File, "--queue", "a", "--data", "tcp://127.0.0.1:*", "--data-http", "http://127.0.0.1:0");
        _other = await WorkerProcess.StartAsync("--sqlite", File, "--queue", "b", "--data", "tcp://127.0.0.1:*");
        _cleanup.AddRange([_other, _holder, _host, _server]);
    }

    public async Task DisposeAsync()
    {
        foreach (IAsyncDisposable d in _cleanup) await d.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private static int DataPort(WorkerProcess worker)
        => new Uri(worker.Output.First(l => l.StartsWith("DATA ", StringComparison.Ordinal))[5..]).Port;

    private Task<IpyRpcClient> ConnectAsync() => IpyRpcZeroMqClient.ConnectAsync(_host.Endpoint, new IpyRpcClientOptions { Output = (_, _) => { } });

    private static double RowSum(int from, int to) => Enumerable.Range(from * Cols, (to - from) * Cols).Sum(i => (double)i);

    [Fact]
    public async Task TheCallerFetchesAndSlicesStraightFromTheWorkerThatComputedTheValue()
    {
        await using IpyRpcClient client = await ConnectAsync();
        long before = client.BytesReceived;
        RemotePointer<double[,]> pointer = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);

        Assert.Equal(("zmq", "127.0.0.1", DataPort(_holder)), (pointer.Protocol, pointer.Host, pointer.Port));
        Assert.NotEqual(_server.Data.Id, pointer.Holder);
        Assert.Equal(0, _server.Data.Count);
        Assert.Equal(Rows * Cols * 8, pointer.Bytes);

        double[,] first = await client.FetchAsync(pointer, 0, 10);
        Assert.Equal(new[] { 10, Cols }, new[] { first.GetLength(0), first.GetLength(1) });
        Assert.Equal(79.0, first[9, 7]);
        Assert.InRange(client.PointerBytesFetched, 10 * Cols * 8, 2000);
        Assert.InRange(client.BytesReceived - before, 1, 4000); // the pointer came through the server, the rows did not

        double[,] whole = await client.FetchAsync(pointer);
        Assert.Equal((Rows * Cols) - 1.0, whole[Rows - 1, Cols - 1]);
        Assert.InRange(client.BytesReceived - before, 1, 4000);
    }

    [Fact]
    public async Task APointerResolvesInPlaceOnItsHolderAndAnotherWorkerFetchesItFromTheHolderDirectly()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);
        long before = client.BytesReceived;

        // Queue a runs on the holder: the argument is the very array it keeps.
        Assert.Equal($"True {_holder.Pid}", await client.CallAsync<string>("ptr.is_last_made", made));

        // Queue b runs on the other worker, which fetches the value from the holder, not through the server or the caller.
        Assert.Equal(_other.Pid, await client.CallAsync<int>("ptr.pid"));
        Assert.Equal(RowSum(0, Rows), await client.CallAsync<double>("ptr.sum", made));

        // compute → slice → reduce, by pointer end to end: 10 rows kept on the holder, summed on the other worker.
        RemotePointer<double[,]> head = await client.CallPointerAsync<double[,]>("ptr.head", made, 10);
        Assert.Equal(_holder.Pid.ToString(), (await client.CallAsync<string>("ptr.is_last_made", head)).Split(' ')[1]);
        Assert.Equal(RowSum(0, 10), await client.CallAsync<double>("ptr.sum", head));

        Assert.Equal(0, client.PointerBytesFetched);
        Assert.InRange(client.BytesReceived - before, 1, 4000);
        Assert.Equal(0, _server.Data.Count);
    }

    [Fact]
    public async Task APointerNamesEveryTransportOfItsHolderAndAFetchFallsBackToAnotherWhenOneIsDown()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", 100, Cols);
        Uri http = new(_holder.Output.First(l => l.StartsWith("DATA-HTTP ", StringComparison.Ordinal))[10..]);
        Assert.Equal("zmq", made.Protocol); // the caller came over ZeroMQ: that transport first
        PointerEndpoint alternate = Assert.Single(made.Alternates);
        Assert.Equal(("http", "127.0.0.1", http.Port, "/ipyrpc"), (alternate.Protocol, alternate.Host, alternate.Port, alternate.BasePath));

        // The ZeroMQ address no longer answers (a port nothing listens on): the fetch goes over HTTP instead.
        using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        probe.Start();
        int dead = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        RemotePointer<double[,]> moved = RemotePointer.FromMap(new Dictionary<string, object?>(made.ToMap()) { ["port"] = (long)dead })!.As<double[,]>();
        double[,] rows = await client.FetchAsync(moved, 0, 2);
        Assert.Equal(8.0, rows[1, 0]);
        Assert.InRange(client.PointerBytesFetched, 2 * Cols * 8, 1000);
    }

    [Fact]
    public async Task ThePythonClientFetchesSlicesAndPassesPointersFromTheWorkerAsNumpyArrays()
    {
        (int code, string stdout, string stderr) = await IpyRpc.Tests.PythonPeer.RunAsync("ipyrpc_client.py", _host.Endpoint, "--pointers");
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("pointer: ipyrpc_data_pointer zmq [1000, 8] 64000 double[,] direct", stdout);
        Assert.Contains("head: ndarray (10, 8) True", stdout);
        Assert.Contains("tail equal: True", stdout);
        Assert.Contains("whole equal: True", stdout);
        Assert.Contains("sum by pointer: True", stdout);
        Assert.Contains("chain: True", stdout);
        Assert.Contains("pointer in a list: True", stdout);
        Assert.Contains("numpy argument: True", stdout);
        Assert.Contains("after release: pointer_released", stdout);
        Assert.Contains("after ttl: pointer_expired", stdout);
        Assert.Contains("wrong key: pointer_denied", stdout);
        Assert.Contains("frame: DataFrame (20, 4) day datetime64[ns] ['price', 'volume', 'ticker', 'up'] ['float64', 'int64', 'object', 'bool']", stdout);
        Assert.Contains("frame slice equal: True None", stdout);
        Assert.Contains("frame total: 20 rows, price total 2095", stdout);
        Assert.Contains("frame total by pointer: 20 rows, price total 2095", stdout);
        Assert.Contains("tensor rows: ndarray (2, 2, 3) True", stdout);
        Assert.Contains("http rows equal: True", stdout); // a plain GET of the worker's HTTP address
        Assert.Contains("tensor argument: 2x2x3 sum 66", stdout);
        Assert.Contains("plain dict rows equal: True True", stdout); // a pointer decoded from JSON works as one the client made
        Assert.Contains("ttl refused: 0 True", stdout);
        Assert.Contains("ttl refused: -1 True", stdout);
        Assert.Contains("ttl refused: nan True", stdout);
        Assert.Contains("ttl forever: None", stdout);
        Assert.Contains("released by plain dict: pointer_released", stdout);
    }

    [Fact]
    public async Task AJsonRpcCallerFetchesAndReleasesAWorkersPointerThroughTheServer()
    {
        // The worker serves its values over ZeroMQ (and HTTP GET); a JSON-RPC caller reaches only the server, which fetches for it.
        await using IpyRpcHttpServer http = await IpyRpcHttpServer.StartAsync(_server);
        using var web = new HttpClient { BaseAddress = http.Address };
        async Task<JsonElement> Rpc(string body)
        {
            using HttpResponseMessage response = await web.PostAsync("rpc", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        }

        JsonElement made = await Rpc("""{"jsonrpc":"2.0","id":1,"method":"ptr.range","params":[5]}""");
        Assert.Equal(JsonValueKind.Array, made.GetProperty("result").ValueKind); // not configured for a pointer: the value

        _server.Config(new() { ["ptr.matrix"] = new() { ReturnPointer = true } });
        JsonElement pointer = (await Rpc($$"""{"jsonrpc":"2.0","id":2,"method":"ptr.matrix","params":[{{Rows}},{{Cols}}]}""")).GetProperty("result");
        Assert.Equal("ipyrpc_data_pointer", pointer.GetProperty("type").GetString());
        Assert.Equal("http", pointer.GetProperty("protocol").GetString()); // the worker's address for the caller's transport
        Assert.Contains(pointer.GetProperty("alternates").EnumerateArray(), a => a.GetProperty("port").GetInt32() == DataPort(_holder));
        Assert.Equal(0, _server.Data.Count); // held by the worker, not the server

        JsonElement rows = (await Rpc("""{"jsonrpc":"2.0","id":3,"method":"rpc.fetch","params":{"pointer":""" + pointer.GetRawText() + ""","start":2,"stop":4}}""")).GetProperty("result");
        Assert.Equal([2, Cols], rows.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(2 * Cols, rows.GetProperty("data")[0][0].GetDouble());
        JsonElement last = (await Rpc($$"""{"jsonrpc":"2.0","id":4,"method":"rpc.fetch","params":[{{pointer.GetRawText()}},-1]}""")).GetProperty("result");
        Assert.Equal((Rows * Cols) - 1, last.GetProperty("data")[0][Cols - 1].GetDouble());

        // A value held by a worker that serves it over ZeroMQ alone: no HTTP GET could reach it.
        _server.Config(new() { ["ptr.pid"] = new() { ReturnPointer = true, Queue = "b" } }); // a pattern set again is replaced whole
        JsonElement behindZeroMq = (await Rpc("""{"jsonrpc":"2.0","id":9,"method":"ptr.pid"}""")).GetProperty("result");
        Assert.Equal("zmq", behindZeroMq.GetProperty("protocol").GetString());
        Assert.False(behindZeroMq.TryGetProperty("alternates", out _)); // no other address
        Assert.Equal(_other.Pid, (await Rpc("""{"jsonrpc":"2.0","id":10,"method":"rpc.fetch","params":[""" + behindZeroMq.GetRawText() + "]}")).GetProperty("result").GetInt32());

        JsonElement bad = await Rpc("""{"jsonrpc":"2.0","id":5,"method":"rpc.fetch","params":[{"type":"ipyrpc_data_pointer"}]}""");
        Assert.Equal(-32602, bad.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("needs a pointer", bad.GetProperty("error").GetProperty("message").GetString());
        JsonElement badRow = await Rpc($$"""{"jsonrpc":"2.0","id":6,"method":"rpc.fetch","params":[{{pointer.GetRawText()}},"x"]}""");
        Assert.Contains("start is a row index", badRow.GetProperty("error").GetProperty("message").GetString());

        Assert.True((await Rpc("""{"jsonrpc":"2.0","id":7,"method":"rpc.release","params":{"pointer":""" + pointer.GetRawText() + "}}")).GetProperty("result").GetBoolean());
        JsonElement gone = await Rpc($$"""{"jsonrpc":"2.0","id":8,"method":"rpc.fetch","params":[{{pointer.GetRawText()}}]}""");
        Assert.Equal(-32011, gone.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal("pointer_released", gone.GetProperty("error").GetProperty("data").GetProperty("code").GetString());
    }

    [Fact]
    public async Task WhenTheHolderIsGoneFetchesAndArgumentsSaySo()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", 10, Cols);
        _holder.Kill();

        var fetch = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.FetchAsync(made));
        Assert.Equal(ErrorCodes.HolderUnreachable, fetch.Code);
        Assert.Contains($"127.0.0.1:{DataPort(_holder)}", fetch.Message);

        var argument = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", made));
        Assert.Equal(ErrorCodes.HolderUnreachable, argument.Code);
        Assert.Contains("Argument 'm' of ptr.sum", argument.Message);
    }

    [Fact]
    public async Task AFunctionOnAnotherWorkerFetchesOnlyTheRowsItNeedsFromTheHolder()
    {
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", Rows, Cols);
        Assert.Equal(DataPort(_holder), made.Port); // held by the worker of queue "a"

        // Rows 5000..5002 of 10,000, summed on the other worker, which fetched them (and only them) from the holder.
        double expected = Enumerable.Range(5000 * Cols, 3 * Cols).Sum();
        Assert.Equal(expected, await client.CallAsync<double>("ptr.rowsum", made, 5000, 5003));
    }

    [Fact]
    public async Task AWorkerConnectsOnlyToHoldersItsQueueSealed()
    {
        // The worker running ptr.sum resolves the holder's pointer (sealed under the file's key, which both workers read)
        // but not the same pointer pointed elsewhere, nor one from a store of another file.
        await using IpyRpcClient client = await ConnectAsync();
        RemotePointer<double[,]> made = await client.CallPointerAsync<double[,]>("ptr.matrix", 10, Cols);
        Assert.Equal(Enumerable.Range(0, 10 * Cols).Sum(), await client.CallAsync<double>("ptr.sum", made));

        using var bait = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        bait.Start();
        Dictionary<string, object?> moved = made.ToMap();
        moved["port"] = (long)((System.Net.IPEndPoint)bait.LocalEndpoint).Port;
        moved.Remove("alternates");
        await using var elsewhere = new SqliteJobQueue(Path.Combine(_folder, "another.db"));
        await using var otherDeployment = new IpyRpcServer(new IpyRpcServerOptions { Queue = elsewhere, Concurrency = 0 });
        otherDeployment.Data.Advertise(new PointerEndpoint("zmq", "127.0.0.1", ((System.Net.IPEndPoint)bait.LocalEndpoint).Port));
        RemotePointer<double[,]> foreign = otherDeployment.Data.Put(new double[2, 2], IpyRpc.Formatting.FormatterRegistry.Get<double[,]>());
        Assert.NotNull(foreign.Seal);

        foreach (object pointer in new object[] { moved, foreign })
        {
            var e = await Assert.ThrowsAsync<IpyRpcPointerException>(() => client.CallAsync<double>("ptr.sum", pointer));
            Assert.Equal(ErrorCodes.PointerDenied, e.Code);
            Assert.Contains("Argument 'm' of ptr.sum", e.Message);
        }

        await Task.Delay(200);
        Assert.False(bait.Pending()); // the worker connected nowhere
    }
}
