using System.Net;
using System.Text;
using System.Text.Json;
using IpyRpc.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace IpyRpc.Http.Tests;

/// <summary>JSON-RPC requests on one HTTP connection share one server session; an aborted request abandons only its own call.</summary>
public sealed class JsonRpcSessionTests(HttpFixture fixture) : IClassFixture<HttpFixture>
{
    private static async Task<JsonElement> CallAsync(HttpClient http, Uri address, string method, string parameters, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent($$"""{"jsonrpc":"2.0","method":"{{method}}","params":{{parameters}},"id":1}""", Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await http.PostAsync(new Uri(address, "rpc"), content, cancellationToken);
        using JsonDocument document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        return document.RootElement.TryGetProperty("result", out JsonElement result)
            ? result.Clone()
            : throw new InvalidOperationException(document.RootElement.GetRawText());
    }

    [Fact]
    public async Task RequestsOnOneConnectionShareItsSessionAndAnotherConnectionHasItsOwn()
    {
        using var one = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 });
        using var other = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 });
        string[] ids = new string[5];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = (await CallAsync(one, fixture.Host.Address, "connection_id", "[]")).GetString()!;
            Assert.Equal(i + 2, (await CallAsync(one, fixture.Host.Address, "add", $"[{i}, 2]")).GetInt32());
        }

        Assert.Single(ids.Distinct());
        Assert.NotEqual(ids[0], (await CallAsync(other, fixture.Host.Address, "connection_id", "[]")).GetString());
    }

    [Fact]
    public async Task AnAbortedRequestOverHttp2CancelsItsCallAndTheConnectionsSessionServesOn()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        WebApplicationBuilder builder = LoopbackKestrel.CreateBuilder();
        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2)); // cleartext HTTP/2: streams on one connection
        await using WebApplication app = builder.Build();
        app.MapIpyRpc(server);
        await app.StartAsync();
        var address = LoopbackKestrel.AddressOf(app);
        using var http = new HttpClient(new SocketsHttpHandler()) { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        string before = (await CallAsync(http, address, "connection_id", "[]")).GetString()!;
        string gate = Gates.NewName("h2-abort");
        using var abort = new CancellationTokenSource();
        Task waiting = CallAsync(http, address, "wait_for_cancel", $"[\"{gate}\"]", abort.Token);
        await Gates.WaitAsync(gate + ".started");
        abort.Cancel(); // resets this request's stream; the connection stays open
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        await Gates.WaitAsync(gate + ".cancelled"); // the function's token fired: its call was abandoned, not left running

        Assert.Equal(before, (await CallAsync(http, address, "connection_id", "[]")).GetString());
        Assert.Equal(7, (await CallAsync(http, address, "add", "[3, 4]")).GetInt32());
        await app.StopAsync();
    }
}
