using System.Collections.Concurrent;
using System.Net;
using IpyRpc.Http;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.Tests;
using Microsoft.Extensions.Logging;
using static IpyRpc.Http.Tests.BinaryRequests;

namespace IpyRpc.Http.Tests;

/// <summary>
/// How the connections the binary endpoint keeps between requests live and end. A client that vanished is forgotten
/// after the idle timeout, and one that never authenticates after the authentication timeout; past
/// <see cref="IpyRpcHttpOptions.MaxConnections"/> no new one opens, so clients that say hello and go cannot grow the
/// server's memory without end. A live client keeps its connection with pings, learns when the server no longer
/// holds it (and connects again), and hears a close the server made, with its reason.
/// </summary>
public sealed class HttpConnectionLifetimeTests
{
    [Fact]
    public async Task AConnectionIdleForItsTimeoutEndsAndOneWithARequestInFlightDoesNot()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        var gone = new ConcurrentQueue<(IpyRpcConnection Connection, DisconnectInfo Info)>();
        server.ClientDisconnected += (c, info) => gone.Enqueue((c, info));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { ConnectionIdleTimeout = TimeSpan.FromSeconds(2) });
        using var http = new HttpClient { BaseAddress = host.Address };

        // Two clients that vanish without a close (no pings, as a live client sends): one once a call it left running
        // has ended, the other right after its hello. The hello's answer names the timeout, for clients to keep within.
        string busy, silent;
        using (HttpResponseMessage hello = await HelloAsync(http))
        {
            busy = hello.Headers.GetValues(BinaryEndpoint.ConnectionHeader).Single();
            Assert.Equal("2", hello.Headers.GetValues(BinaryEndpoint.IdleTimeoutHeader).Single());
        }

        string gate = Gates.NewName("idle");
        Task<HttpResponseMessage> held = PostAsync(http, new IpyRpcMessage { Kind = MessageKind.Call, Id = 2, Function = "hold", Parts = [JobCodec.Encode(new object?[] { gate }, Serialization.MessagePack)] }, busy);
        await Gates.WaitAsync(gate + ".started");
        using (HttpResponseMessage hello = await HelloAsync(http)) silent = hello.Headers.GetValues(BinaryEndpoint.ConnectionHeader).Single();

        await WaitUntil(() => server.Connections.Count == 1, "the silent connection was still held");
        await WaitUntil(() => !gone.IsEmpty, "its end was not announced");
        var (ended, info) = Assert.Single(gone);
        Assert.Equal(silent, ended.Id);
        Assert.Equal(DisconnectReason.IdleTimeout, info.Reason);
        Assert.Equal("No request for 2 s.", info.Message);

        // The call outlasts the timeout, and keeps its connection: it is not idle.
        await Task.Delay(3000);
        Assert.Equal(busy, Assert.Single(server.Connections).Id);
        Gates.Open(gate);
        using (HttpResponseMessage answer = await held) Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        await WaitUntil(() => server.Connections.Count == 0, "the connection whose call had ended was still held");
    }

    [Fact]
    public async Task OnAServerThatRequiresAuthenticationAConnectionThatDoesNotAuthenticateInTimeIsClosedAndToldSo()
    {
        // Long enough that the client below proves its secret within it, on a loaded machine too.
        var options = new IpyRpcServerOptions { SharedSecret = "right", AuthenticationTimeout = TimeSpan.FromSeconds(1) };
        await using var server = new IpyRpcServer(options);
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        await using IpyRpcClient proven = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, new IpyRpcClientOptions { SharedSecret = "right" });
        IpyRpcConnection kept = Assert.Single(server.Connections);

        using var http = new HttpClient { BaseAddress = host.Address };
        var ids = new List<string>();
        for (int i = 0; i < 20; i++)
        {
            using HttpResponseMessage hello = await HelloAsync(http); // a hello each, and nothing more
            ids.Add(hello.Headers.GetValues(BinaryEndpoint.ConnectionHeader).Single());
        }

        Assert.Equal(21, server.Connections.Count);

        // The twenty are closed; the client that proved the secret stays, and is served, well past that.
        await WaitUntil(() => server.Connections.Count == 1, "connections that never authenticated were still held");
        await Task.Delay(1500);
        Assert.Same(kept, Assert.Single(server.Connections));
        Assert.Equal(5, await proven.CallAsync<int>("add", 2, 3));

        // One of them comes back: it is told why it was closed.
        using (HttpResponseMessage late = await PostAsync(http, new IpyRpcMessage { Kind = MessageKind.Ping, Id = 2 }, ids[7]))
        {
            Assert.Equal(HttpStatusCode.NotFound, late.StatusCode);
            IpyRpcMessage close = MessageCodec.DecodeFramed(await late.Content.ReadAsByteArrayAsync(), ProtocolVersion.DefaultMaxMessageBytes);
            Assert.Equal(MessageKind.Close, close.Kind);
            Assert.Equal(DisconnectReason.Unauthorized, DisconnectInfo.FromMessage(close, "the server").Reason);
        }

        // Where no authentication is required, a connection that has none is a whole one, and stays.
        await using var open = new IpyRpcServer(new IpyRpcServerOptions { AuthenticationTimeout = TimeSpan.FromSeconds(1) });
        await using IpyRpcHttpServer openHost = await IpyRpcHttpServer.StartAsync(open);
        using var openHttp = new HttpClient { BaseAddress = openHost.Address };
        (await HelloAsync(openHttp)).Dispose();
        await Task.Delay(2500);
        Assert.Single(open.Connections);
    }

    [Fact]
    public async Task PastMaxConnectionsANewConnectionIsRefusedAndThoseHeldAreServed()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { MaxConnections = 3 });
        IpyRpcClient[] clients = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests)));
        try
        {
            var refused = await Assert.ThrowsAsync<IpyRpcTooManyRequestsException>(() => IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests));
            Assert.Contains("MaxConnections", refused.Message);

            // A request that names no connection would open one for itself: refused the same way, with the error framed.
            using var http = new HttpClient { BaseAddress = host.Address };
            using (HttpResponseMessage lone = await PostAsync(http, new IpyRpcMessage { Kind = MessageKind.Ping, Id = 9 }, null))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, lone.StatusCode);
                IpyRpcMessage error = MessageCodec.DecodeFramed(await lone.Content.ReadAsByteArrayAsync(), ProtocolVersion.DefaultMaxMessageBytes);
                Assert.Equal((MessageKind.Error, 9ul), (error.Kind, error.Id));
                Assert.Equal(ErrorCodes.TooManyRequests, RemoteError.Decode(error.Parts[0].Span, Serialization.MessagePack).Code);
            }

            for (int i = 0; i < clients.Length; i++) Assert.Equal(i + 10, await clients[i].CallAsync<int>("add", i, 10));
            Assert.Equal(3, server.Connections.Count);

            // A place given back is a place to take.
            await clients[0].DisposeAsync();
            clients[0] = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests);
            Assert.Equal(2, await clients[0].CallAsync<int>("add", 1, 1));
        }
        finally
        {
            foreach (IpyRpcClient c in clients) await c.DisposeAsync();
        }
    }

    [Fact]
    public async Task AFloodOfHellosOpensExactlyTheLimitAndEveryPlaceComesBack()
    {
        var log = new ListLogger();
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { LoggerFactory = log });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { MaxConnections = 50 });
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 32 }) { BaseAddress = host.Address };
        for (int round = 0; round < 3; round++)
        {
            HttpResponseMessage[] answers = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Task.Run(() => HelloAsync(http))));
            string[] opened = [.. answers.Where(a => a.StatusCode == HttpStatusCode.OK).Select(a => a.Headers.GetValues(BinaryEndpoint.ConnectionHeader).Single())];
            Assert.Equal(50, opened.Length);
            Assert.Equal(150, answers.Count(a => a.StatusCode == HttpStatusCode.ServiceUnavailable));
            Assert.Equal(50, server.Connections.Count);
            foreach (HttpResponseMessage a in answers) a.Dispose();

            // Closed, every place is free again: the next round opens fifty as well.
            await Task.WhenAll(opened.Select(async id =>
            {
                using HttpResponseMessage closed = await PostAsync(http, new DisconnectInfo(DisconnectReason.Closed, "bye").ToMessage(), id);
                Assert.Equal(HttpStatusCode.NoContent, closed.StatusCode);
            }));
            Assert.Empty(server.Connections);
        }

        // 450 refusals, and one warning about them (at most one a minute): a flood does not flood the log too.
        (LogLevel Level, string Message, Exception? _) warned;
        lock (log.Entries) warned = Assert.Single(log.Entries, e => e.Message.Contains("MaxConnections"));
        Assert.Equal(LogLevel.Warning, warned.Level);
        Assert.Contains("holds 50 connections", warned.Message);
    }

    [Fact]
    public async Task OptionsThatCannotWorkAreRefusedAtStart()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        foreach (IpyRpcHttpOptions bad in new[]
        {
            new IpyRpcHttpOptions { ConnectionIdleTimeout = TimeSpan.Zero },
            new IpyRpcHttpOptions { MaxConnections = 0 },
        })
        {
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => IpyRpcHttpServer.StartAsync(server, options: bad));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new IpyRpcServer(new IpyRpcServerOptions { AuthenticationTimeout = TimeSpan.FromSeconds(-5) }));

        // No timeout at all is a choice, not a mistake.
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { ConnectionIdleTimeout = Timeout.InfiniteTimeSpan });
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
    }

    [Fact]
    public async Task AQuietClientKeepsItsConnectionAndItsAuthenticationPastTheIdleTimeout()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "right" });
        server.Register(typeof(HttpFunctions));
        // 3 s: the client pings after a second of quiet, so a test machine that stalls its timers for under two seconds
        // (a full parallel run on two cores) does not pass for a client gone quiet.
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { ConnectionIdleTimeout = TimeSpan.FromSeconds(3) });
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, new IpyRpcClientOptions { SharedSecret = "right" });
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        IpyRpcConnection connection = Assert.Single(server.Connections);

        // Three timeouts with nothing to say: the client's pings keep the connection, which is still the one it proved
        // the secret on (a new one, unauthenticated, would refuse the call).
        await Task.Delay(9000);
        Assert.Same(connection, Assert.Single(server.Connections));
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
    }

    [Fact]
    public async Task ARequestNamingAConnectionTheServerDoesNotHoldIsToldSoAndRunsNothing()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        string gate = Gates.NewName("gone");
        using HttpResponseMessage response = await PostAsync(http, new IpyRpcMessage
        {
            Kind = MessageKind.Call,
            Id = 4,
            Function = "open_gate",
            Parts = [JobCodec.Encode(new object?[] { gate }, Serialization.MessagePack)],
        }, "0123456789abcdef0123456789abcdef");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        IpyRpcMessage error = MessageCodec.DecodeFramed(await response.Content.ReadAsByteArrayAsync(), ProtocolVersion.DefaultMaxMessageBytes);
        Assert.Equal((MessageKind.Error, 4ul), (error.Kind, error.Id));
        Assert.Equal(ErrorCodes.ConnectionLost, RemoteError.Decode(error.Parts[0].Span, Serialization.MessagePack).Code);
        Assert.False(Gates.Get(gate).Task.IsCompleted); // the call did not run
        Assert.Empty(server.Connections); // and no connection was opened in its place
    }

    [Fact]
    public async Task AfterTheServerRestartsAClientOverRequestsConnectsAgainAndProvesItsSecretAgain()
    {
        var options = new IpyRpcServerOptions { SharedSecret = "right" };
        IpyRpcServer first = new(options);
        first.Register(typeof(HttpFunctions));
        IpyRpcHttpServer firstHost = await IpyRpcHttpServer.StartAsync(first);
        Uri address = firstHost.Address;
        int reconnected = 0;
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.Requests, new IpyRpcClientOptions { SharedSecret = "right" });
        client.Reconnected += () => Interlocked.Increment(ref reconnected);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        await firstHost.DisposeAsync();
        await first.DisposeAsync();

        // While the server is down, the connection counts as lost and the client dials again; a call waits for it until
        // its time is up, then fails as a connection failure that says it was not sent.
        var down = await Assert.ThrowsAsync<IpyRpcConnectionException>(() => client.CallAsync<int>("add", [1, 1], new CallOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.Matches("not sent|never reached the server", down.Message);
        Assert.True(down.NotDelivered);

        await using var second = new IpyRpcServer(options);
        second.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer secondHost = await IpyRpcHttpServer.StartAsync(second, $"http://127.0.0.1:{address.Port}");

        // The first call after the restart learns that the connection is gone (it ran nowhere); the client says hello,
        // proves its secret again, and makes the call again: its caller sees only the answer.
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
        await WaitUntil(() => Volatile.Read(ref reconnected) == 1, "the client did not reconnect");
        Assert.Equal(9, await client.CallAsync<int>("add", 4, 5));
        IpyRpcConnection connection = Assert.Single(second.Connections);
        Assert.True(connection.IsAuthenticated);
    }

    [Theory]
    [InlineData(502, typeof(IpyRpcConnectionException))]
    [InlineData(504, typeof(IpyRpcConnectionException))]
    [InlineData(500, typeof(IpyRpcException))]
    public async Task AGatewaysErrorPageIsAConnectionFailureAndAServersIsNot(int status, Type expected)
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        var gateway = new GatewayHandler { InnerHandler = new SocketsHttpHandler() };
        using var http = new HttpClient(gateway);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, http: http);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));

        // A proxy in between answers for the server with a page of its own, no IpyRpc reply in it.
        gateway.Status = status;
        Exception failed = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<int>("add", 2, 3));
        Assert.Equal(expected, failed.GetType());
        Assert.Contains($"HTTP {status}", failed.Message);
        gateway.Status = null;
        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
    }

    /// <summary>Answers every request with <see cref="Status"/> and an HTML page, when set, as a gateway does.</summary>
    private sealed class GatewayHandler : DelegatingHandler
    {
        public int? Status { get; set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            => Status is int status
                ? Task.FromResult(new HttpResponseMessage((HttpStatusCode)status) { Content = new StringContent("<html><body>Bad Gateway</body></html>", System.Text.Encoding.UTF8, "text/html") })
                : base.SendAsync(request, cancellationToken);
    }

    [Theory]
    [InlineData(DisconnectReason.Unauthorized, "Your access was revoked.")]
    [InlineData(DisconnectReason.ClosedByServer, "Closed by the operator.")]
    public async Task AConnectionTheServerClosesIsToldWhyAtItsNextRequestAndDoesNotComeBackOnItsOwn(DisconnectReason reason, string why)
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "right" });
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests, new IpyRpcClientOptions { SharedSecret = "right" });
        var heard = new ConcurrentQueue<DisconnectInfo>();
        int reconnects = 0;
        client.Disconnected += heard.Enqueue;
        client.Reconnecting += _ => Interlocked.Increment(ref reconnects);
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));

        await Assert.Single(server.Connections).CloseAsync(why, reason);
        Assert.Empty(server.Connections);

        // Over requests the server cannot speak first: the client's next request hears the close, and the reason.
        var failed = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<int>("add", 2, 3));
        Assert.Contains(why, failed.Message);
        await WaitUntil(() => !heard.IsEmpty, "the client did not hear of the close");
        DisconnectInfo info = Assert.Single(heard);
        Assert.Equal((reason, why), (info.Reason, info.Message));
        Assert.False(client.IsConnected);

        // Closed on purpose: the client does not connect again by itself, and later calls fail at once, saying why.
        await Task.Delay(500);
        Assert.Equal(0, Volatile.Read(ref reconnects));
        Assert.Empty(server.Connections);
        Assert.Contains(why, (await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<int>("add", 4, 5))).Message);
    }

    [Fact]
    public async Task AQuietClientWhoseConnectionTheServerClosedHearsOfItFromItsPing()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(HttpFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { ConnectionIdleTimeout = TimeSpan.FromSeconds(1) });
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.Requests);
        var heard = new ConcurrentQueue<DisconnectInfo>();
        client.Disconnected += heard.Enqueue;
        Assert.Equal(3, await client.CallAsync<int>("add", 1, 2));
        await Assert.Single(server.Connections).CloseAsync("Maintenance.");

        // No call of the client's: its next ping, within a third of the timeout, brings the close back.
        await WaitUntil(() => !heard.IsEmpty, "the client did not hear of the close");
        Assert.Equal((DisconnectReason.ClosedByServer, "Maintenance."), (Assert.Single(heard).Reason, Assert.Single(heard).Message));
        Assert.False(client.IsConnected);
    }

    private static async Task WaitUntil(Func<bool> condition, string why)
    {
        DateTime giveUp = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, why);
            await Task.Delay(25);
        }
    }
}
