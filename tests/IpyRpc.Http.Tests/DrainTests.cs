using System.Text;
using System.Text.Json;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>What callers over HTTP get from a server that is stopping while a call it runs drains.</summary>
public sealed class DrainTests
{
    [Fact]
    public async Task AJsonRpcCallToADrainingServerIsAnsweredUnavailableWithItsIdAndTheRunningCallFinishes()
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { ShutdownTimeout = TimeSpan.FromSeconds(20) });
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.WebSocket);
        string gate = Gates.NewName("drain");
        Task<string> running = client.CallAsync<string>("hold", gate);
        await Gates.WaitAsync(gate + ".started");
        Task stopping = server.DisposeAsync().AsTask();

        using var web = new HttpClient { BaseAddress = host.Address };
        using HttpResponseMessage response = await web.PostAsync("rpc", new StringContent("""{"jsonrpc":"2.0","method":"add","params":[1,2],"id":7}""", Encoding.UTF8, "application/json"));
        JsonElement reply = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(7, reply.GetProperty("id").GetInt32());
        Assert.Equal(ErrorCodes.ToJsonRpc(ErrorCodes.Unavailable), reply.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("did not run", reply.GetProperty("error").GetProperty("message").GetString());
        Assert.False(stopping.IsCompleted);

        Gates.Open(gate);
        Assert.Equal(gate, await running.WaitAsync(TimeSpan.FromSeconds(20)));
        await stopping.WaitAsync(TimeSpan.FromSeconds(20));
    }
}
