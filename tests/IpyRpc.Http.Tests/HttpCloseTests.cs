using System.Collections.Concurrent;
using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>
/// A client over HTTP requests that is disposed tells the server, which ends its connection then: not minutes later,
/// when the idle sweep would have found it.
/// </summary>
public sealed class HttpCloseTests
{
    [Fact]
    public async Task ADisposedRequestsClientEndsItsServerConnectionAtOnce()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        var gone = new ConcurrentQueue<(IpyRpcConnection Connection, DisconnectInfo Info)>();
        server.ClientDisconnected += (c, info) => gone.Enqueue((c, info));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        var seen = new List<IpyRpcConnection>();
        for (int i = 0; i < 10; i++)
        {
            IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests);
            Assert.Equal(i + 1, await client.CallAsync<int>("add", i, 1));
            IpyRpcConnection connection = Assert.Single(server.Connections);
            Assert.Equal("http", connection.Transport);
            seen.Add(connection);
            await client.DisposeAsync();
            Assert.Empty(server.Connections); // the close was taken before dispose returned
        }

        Assert.Equal(seen, gone.Select(g => g.Connection));
        Assert.All(gone, g => Assert.Equal(DisconnectReason.Closed, g.Info.Reason));
    }

    [Fact]
    public async Task ACloseThatNamesNoConnectionOfTheServerClosesNothing()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        IpyRpcConnection connection = Assert.Single(server.Connections);

        using var http = new HttpClient { BaseAddress = host.Address };
        foreach (string? named in new[] { "no-such-connection", null })
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "ipyrpc")
            {
                Content = new ByteArrayContent(MessageCodec.EncodeFramed(new DisconnectInfo(DisconnectReason.Closed, "bye").ToMessage())),
            };
            request.Content.Headers.ContentType = new(BinaryEndpoint.ContentType);
            if (named is not null) request.Headers.Add(BinaryEndpoint.ConnectionHeader, named);
            using HttpResponseMessage response = await http.SendAsync(request);
            Assert.Equal(System.Net.HttpStatusCode.NoContent, response.StatusCode);
        }

        Assert.Same(connection, Assert.Single(server.Connections));
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
    }
}
