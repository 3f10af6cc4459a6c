using IpyRpc;
using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>The binary protocol through the IpyRpc client over real Kestrel on loopback.</summary>
public sealed class BinaryTests(HttpFixture fixture) : IClassFixture<HttpFixture>
{
    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task CallsDescribeAndTypedProxiesWork(HttpCarrier carrier)
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        Assert.Contains(client.Functions, f => f.Name == "add" && f.Summary == "Adds two integers.");
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
        Assert.Equal(9, await client.Proxy<HttpFunctionsClient>().Add(4, 5));
        Assert.Equal(6.0, await client.CallAsync<double>("scale", [3.0], new CallOptions { Serialization = Serialization.Json }));
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task OutputArrivesLiveBeforeTheCallEnds(HttpCarrier carrier)
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        string gate = Gates.NewName("live");
        var lines = new List<string>();
        var first = new TaskCompletionSource();
        Task<string> call = client.CallAsync<string>("print_wait_print", [gate, "L"], new CallOptions
        {
            Output = (_, text) =>
            {
                lock (lines) lines.Add(text);
                first.TrySetResult();
            },
        });

        await first.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(call.IsCompleted);
        Gates.Open(gate);
        Assert.Equal("L", await call);
        Assert.Equal(["L first" + Environment.NewLine, "L second" + Environment.NewLine], lines);
    }

    [Fact]
    public async Task OutputArrivesLiveThroughTheCallersOwnHttpClientOverRequests()
    {
        // A caller's HttpClient buffers whole responses unless told otherwise: the channel must read its calls' responses as they come.
        using var http = new HttpClient();
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, HttpCarrier.Requests, null, http);
        string gate = Gates.NewName("live-own");
        var first = new TaskCompletionSource<string>();
        Task<string> call = client.CallAsync<string>("print_wait_print", [gate, "M"], new CallOptions { Output = (_, text) => first.TrySetResult(text) });

        Assert.Equal("M first" + Environment.NewLine, await first.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(call.IsCompleted);
        Gates.Open(gate);
        Assert.Equal("M", await call);
    }

    [Fact]
    public async Task DisposingARequestsClientAbortsItsCallsInFlightAndTheServerHearsIt()
    {
        // With the caller's own HttpClient, which outlives the IpyRpc client and is not disposed with it.
        using var http = new HttpClient();
        IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, HttpCarrier.Requests, null, http);
        string gate = Gates.NewName("http-dispose");
        Task<int> call = client.CallAsync<int>("wait_for_cancel", gate);
        await Gates.WaitAsync(gate + ".started");
        await client.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => call.WaitAsync(TimeSpan.FromSeconds(10)));
        await Gates.WaitAsync(gate + ".cancelled");
        using var content = new StringContent("""{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}""", System.Text.Encoding.UTF8, "application/json");
        using HttpResponseMessage alive = await http.PostAsync(new Uri(fixture.Host.Address, "rpc"), content);
        Assert.Contains("\"result\":5", await alive.Content.ReadAsStringAsync()); // the HttpClient serves on
    }

    [Fact]
    public async Task DisposingTheRequestsChannelAbortsTheRequestsItHasInFlight()
    {
        // The channel alone, with no client to cancel its calls first: closing it must abort what it sent.
        using var http = new HttpClient();
        var channel = new HttpMessageChannel(fixture.Host.Address, http);
        string gate = Gates.NewName("channel-dispose");
        await channel.SendAsync(new IpyRpcMessage
        {
            Kind = MessageKind.Call,
            Id = 1,
            Function = "wait_for_cancel",
            Serialization = Serialization.Json,
            Parts = [System.Text.Encoding.UTF8.GetBytes($"[\"{gate}\"]")],
        });
        await Gates.WaitAsync(gate + ".started");
        await channel.DisposeAsync();
        await Gates.WaitAsync(gate + ".cancelled");
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task ARemoteExceptionIsRethrownWithItsInnerChain(HttpCarrier carrier)
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier, new IpyRpcClientOptions { Output = (_, _) => { } });
        var e = await Assert.ThrowsAsync<RemoteException>(() => client.CallAsync<object>("fail", "over http"));
        Assert.Equal("System.InvalidOperationException", e.RemoteType);
        Assert.Equal("over http", e.RemoteMessage);
        Assert.Equal("System.FormatException", Assert.IsType<RemoteException>(e.InnerException).RemoteType);
        await Assert.ThrowsAsync<UnknownFunctionException>(() => client.CallAsync<int>("missing"));
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task ManyConcurrentCallsShareOneHttpClient(HttpCarrier carrier)
    {
        using var http = new HttpClient();
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier, null, http);
        int[] results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => client.CallAsync<int>("add", i, i)));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => 2 * i), results);
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task CancellingACallAbortsItsRequestAndReachesTheServer(HttpCarrier carrier)
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        string gate = Gates.NewName("http-cancel");
        using var cts = new CancellationTokenSource();
        Task<int> call = client.CallAsync<int>("wait_for_cancel", [gate], null, cts.Token);
        await Gates.WaitAsync(gate + ".started");
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Gates.WaitAsync(gate + ".cancelled");
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task LargePayloadsRoundTrip(HttpCarrier carrier)
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        byte[] data = new byte[8 * 1024 * 1024];
        Random.Shared.NextBytes(data);
        Assert.Equal(data, await client.CallAsync<byte[]>("echo_bytes", data));
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task ALargeResultAfterPrintedOutputComesBackWholeAfterTheOutput(HttpCarrier carrier)
    {
        // Over requests, output before the result makes the response chunked, and the large result is written into it
        // from its own parts, a megabyte at a time; a result alone goes with its length.
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        foreach (int length in new[] { 3_500_000, 70_000, 9 << 20 })
        {
            byte[] data = new byte[length];
            new Random(length).NextBytes(data);
            var printed = new System.Text.StringBuilder();
            byte[] back = await client.CallAsync<byte[]>("print_echo_bytes", [data], new CallOptions { Output = (_, text) => printed.Append(text) });
            Assert.Equal(data, back);
            Assert.Equal($"echoing {length} bytes{Environment.NewLine}done{Environment.NewLine}", printed.ToString()); // all of it before the result
            Assert.Equal(data, await client.CallAsync<byte[]>("echo_bytes", data));
        }
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket, false)]
    [InlineData(HttpCarrier.Requests, false)]
    [InlineData(HttpCarrier.WebSocket, true)]
    [InlineData(HttpCarrier.Requests, true)]
    public async Task ManyLargeCallsAtOnceComeBackIntactThroughPooledBuffers(HttpCarrier carrier, bool aboveTheSharedPoolsSize)
    {
        // Large arguments, results, framed messages and received messages all live in pooled arrays on both sides, each
        // given back by its last reader. Given back early, an array would be rented by another call and overwritten
        // while still read or written, and some echo would come back different. Arrays above PooledParts.MaxPooled go to
        // a store of their own, which hands one to the next call of about its size at once.
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        (int tasks, int callsEach, int minBytes, int maxBytes) = aboveTheSharedPoolsSize
            ? (3, 3, PooledParts.MaxPooled + 1, 2 * PooledParts.MaxPooled)
            : (4, 15, 70_000, 400_000);
        // Each way, the arguments or result as encoded, and the message as received (a request's body, a response's
        // large message, a WebSocket message): four arrays a call. A message is written from its parts over requests,
        // and over a WebSocket when it is larger than a frame; a smaller one is framed into one more array each way.
        await LargeEchoes.RunAsync((data, _) => client.CallAsync<byte[]?>("echo_bytes", data), tasks, callsEach, seed: 200,
            arraysPerCall: carrier == HttpCarrier.WebSocket && !aboveTheSharedPoolsSize ? 6 : 4, minBytes, maxBytes);
    }

    [Fact]
    public async Task ContinuationsThatWaitSynchronouslyForAnotherCallGetItOverRequests()
    {
        // A caller's continuation runs on the thread that read its reply, once that exchange is over: one that blocks
        // there for another call's reply must still get it, with several callers doing so at once (each blocks a pool thread).
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, HttpCarrier.Requests);
        int[] sums = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(async () =>
        {
            int total = i;
            for (int step = 0; step < 20; step++)
            {
                total = await client.CallAsync<int>("add", total, 1);
                total = client.CallAsync<int>("add", total, 1).GetAwaiter().GetResult();
            }

            return total;
        })));
        Assert.Equal(Enumerable.Range(0, 4).Select(i => i + 40), sums);
    }

    [Fact]
    public async Task GarbageOnTheBinaryEndpointGetsAFramedErrorAndTheServerKeepsServing()
    {
        using var content = new ByteArrayContent("not a frame at all"u8.ToArray());
        content.Headers.ContentType = new("application/x-ipyrpc");
        using HttpResponseMessage response = await fixture.Http.PostAsync("ipyrpc", content);
        Assert.False(response.IsSuccessStatusCode);
        byte[] body = await response.Content.ReadAsByteArrayAsync();
        IpyRpc.Protocol.IpyRpcMessage error = IpyRpc.Protocol.MessageCodec.DecodeFramed(body);
        Assert.Equal(IpyRpc.Protocol.MessageKind.Error, error.Kind);
        Assert.NotEmpty(RemoteError.Decode(error.Body.Span, error.Serialization).Message);

        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address);
        Assert.Equal(2, await client.CallAsync<int>("add", 1, 1));
    }
}
