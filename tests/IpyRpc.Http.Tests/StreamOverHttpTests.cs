using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Http.Tests;

/// <summary>Streams where HTTP has no duplex connection: one POST per message, and JSON-RPC.</summary>
public sealed class StreamOverHttpTests : IAsyncLifetime
{
    private readonly IpyRpcServer _server = new();
    private IpyRpcHttpServer _host = null!;

    public async Task InitializeAsync()
    {
        _server.Register(typeof(ServerSide));
        _host = await IpyRpcHttpServer.StartAsync(_server);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task AStreamOverSeparateRequestsFlowsWithCreditAndArrivesInOrder()
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(_host.Address, HttpCarrier.Requests, new IpyRpcClientOptions { Output = (_, _) => { } });
        long expected = 0;
        // A window of 64 over 20,000 items: the producer needs hundreds of credits, each a request of its own.
        await foreach (long item in client.Proxy<ServerSideClient>().Bw.Count(20_000, new CallOptions { StreamWindow = 64 }))
        {
            Assert.Equal(expected++, item);
        }

        Assert.Equal(20_000, expected);
        var reports = new List<int>();
        Assert.Equal("done", await client.Proxy<ServerSideClient>().Bw.Work(3, new InlineProgress(t => reports.Add(t.Number))));
        Assert.Equal([1, 2, 3], reports);
    }

    [Fact]
    public async Task AJsonRpcCallerGetsTheStreamCollectedIntoItsResult()
    {
        using var http = new HttpClient { BaseAddress = _host.Address };
        using HttpResponseMessage response = await http.PostAsync("rpc", new StringContent("""{"jsonrpc":"2.0","method":"bw.count","params":[5],"id":1}""", Encoding.UTF8, "application/json"));
        JsonElement body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("[0,1,2,3,4]", body.GetProperty("result").GetRawText());

        // Progress has no place in a JSON-RPC response: the call still answers with its result.
        using HttpResponseMessage work = await http.PostAsync("rpc", new StringContent("""{"jsonrpc":"2.0","method":"bw.work","params":{"steps":3},"id":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal("done", JsonDocument.Parse(await work.Content.ReadAsStringAsync()).RootElement.GetProperty("result").GetString());

        // The OpenRPC document says the result is an array of the items.
        using HttpResponseMessage discover = await http.PostAsync("rpc", new StringContent("""{"jsonrpc":"2.0","method":"rpc.discover","id":3}""", Encoding.UTF8, "application/json"));
        string document = await discover.Content.ReadAsStringAsync();
        Assert.Contains("\"type\":\"array\"", document);
    }

    private sealed class InlineProgress(Action<Tick> report) : IProgress<Tick>
    {
        public void Report(Tick value) => report(value);
    }
}
