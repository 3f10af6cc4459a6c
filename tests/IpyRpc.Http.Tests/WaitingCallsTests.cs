namespace IpyRpc.Http.Tests;

/// <summary>More calls at once than one connection may run: the rest wait their turn on the server, over either carrier.</summary>
public sealed class WaitingCallsTests
{
    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task AClientThatStartsMoreCallsThanItsShareGetsEveryAnswerAndNoMoreRunAtOnce(HttpCarrier carrier)
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 4 });
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, carrier);
        string key = Gates.NewName("waiting-" + carrier);

        // What an interactive user writes: a hundred calls, then wait for them all.
        int[] seen = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => client.CallAsync<int>("overlap", key))).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(seen, n => Assert.InRange(n, 1, 4));
        (int most, int ran) = HttpFunctions.MostAtOnce(key);
        Assert.Equal(100, ran);
        Assert.InRange(most, 1, 4);
    }
}
