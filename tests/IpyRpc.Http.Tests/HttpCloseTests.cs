using System.Collections.Concurrent;
using System.Net;
using IpyRpc.Http;
using IpyRpc.Protocol;
using static IpyRpc.Http.Tests.BinaryRequests;

namespace IpyRpc.Http.Tests;

/// <summary>
/// A client over HTTP requests that is disposed, or gives up connecting, tells the server, which ends its connection
/// then: not minutes later, when the idle sweep would have found it. A message about a connection that is gone opens no
/// new one.
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

        // Disconnects are announced on the thread pool, each connection's in order but not in order across connections.
        for (int i = 0; i < 200 && gone.Count < seen.Count; i++) await Task.Delay(25);
        Assert.Equal(seen.Select(c => c.Id).Order(), gone.Select(g => g.Connection.Id).Order());
        Assert.All(gone, g => Assert.Equal(DisconnectReason.Closed, g.Info.Reason));
    }

    [Fact]
    public async Task AClosePostThatTakesLongerThanTheDisposeWaitsStillReachesTheServer()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        var slow = new SlowHandler { InnerHandler = new SocketsHttpHandler() };
        using var http = new HttpClient(slow);
        IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, http: http);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        Assert.Single(server.Connections);

        // A busy machine: every request from now on takes 8 s to leave; the dispose waits 2 s for its close. (The bound
        // leaves room for a loaded machine's late timers: a dispose that waited for the close would take 8 s.)
        slow.Delay = TimeSpan.FromSeconds(8);
        var disposing = System.Diagnostics.Stopwatch.StartNew();
        await client.DisposeAsync();
        Assert.InRange(disposing.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(6)); // it did not wait for the close
        DateTime giveUp = DateTime.UtcNow.AddSeconds(30);
        while (server.Connections.Count > 0 && DateTime.UtcNow < giveUp) await Task.Delay(50);
        Assert.Empty(server.Connections); // the close went on, and landed
    }

    /// <summary>Holds every request up by <see cref="Delay"/> before it is sent (or until it is cancelled).</summary>
    private sealed class SlowHandler : DelegatingHandler
    {
        public TimeSpan Delay { get; set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Delay > TimeSpan.Zero) await Task.Delay(Delay, cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task AClientRefusedAtConnectLeavesNoConnectionOnTheServer()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "right" });
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        for (int i = 0; i < 5; i++)
        {
            // The server answers hello, so it holds a connection; the proof is wrong, and the client gives up.
            await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, new IpyRpcClientOptions { SharedSecret = "wrong" }));
            Assert.Empty(server.Connections); // the client said goodbye before its connect failed
        }

        await using IpyRpcClient good = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, new IpyRpcClientOptions { SharedSecret = "right" });
        Assert.Equal(3, await good.CallAsync<int>("add", 1, 2));
        Assert.Single(server.Connections);
    }

    [Fact]
    public async Task ACloseOrCreditForAConnectionThatIsGoneOrUnnamedOpensNoneAndClosesNothing()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        IpyRpcConnection kept = Assert.Single(server.Connections);

        // A connection of its own, opened by a hello and closed again.
        using var http = new HttpClient { BaseAddress = host.Address };
        string id;
        using (HttpResponseMessage hello = await HelloAsync(http))
        {
            id = hello.Headers.GetValues(BinaryEndpoint.ConnectionHeader).Single();
        }

        Assert.Equal(2, server.Connections.Count);
        using (HttpResponseMessage closed = await PostAsync(http, Close(), id)) Assert.Equal(HttpStatusCode.NoContent, closed.StatusCode);
        Assert.Same(kept, Assert.Single(server.Connections));

        // Late or stray: a credit that was still on its way when its connection closed (the client sends them without
        // waiting), a close sent twice, or either naming no connection at all.
        foreach (IpyRpcMessage message in new[] { new IpyRpcMessage { Kind = MessageKind.Credit, Id = 3, Credit = 64 }, Close() })
        {
            foreach (string? named in new[] { id, "no-such-connection", null })
            {
                using HttpResponseMessage response = await PostAsync(http, message, named);
                Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
                Assert.Same(kept, Assert.Single(server.Connections));
            }
        }

        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
    }

    [Fact]
    public async Task CreditsOnTheirWayWhileTheirConnectionClosesOpenNoConnection()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 16 }) { BaseAddress = host.Address };

        // The client sends credits without waiting for them, so one may reach the server as its connection's close does.
        // Either goes first; neither may leave a connection behind (one left would wait for the idle sweep, minutes later).
        // The moment where they cross is short, so there are many rounds of eight credits each.
        for (int round = 0; round < 3000; round++)
        {
            string id;
            using (HttpResponseMessage hello = await HelloAsync(http))
            {
                id = hello.Headers.GetValues(BinaryEndpoint.ConnectionHeader).Single();
            }

            Task<HttpResponseMessage>[] racing =
            [
                .. Enumerable.Range(0, 8).Select(i => Task.Run(() => PostAsync(http, new IpyRpcMessage { Kind = MessageKind.Credit, Id = (ulong)(10 + i), Credit = 64 }, id))),
                Task.Run(() => PostAsync(http, Close(), id)),
            ];
            foreach (HttpResponseMessage response in await Task.WhenAll(racing))
            {
                Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
                response.Dispose();
            }

            Assert.True(server.Connections.Count == 0, $"round {round}: {string.Join(", ", server.Connections)} left behind");
        }
    }

    private static IpyRpcMessage Close() => new DisconnectInfo(DisconnectReason.Closed, "bye").ToMessage();
}
