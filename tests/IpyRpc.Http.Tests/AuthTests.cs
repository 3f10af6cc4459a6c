using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.Protocol;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace IpyRpc.Http.Tests;

/// <summary>Functions for the HTTP authentication tests.</summary>
public static class WhoFunctions
{
    /// <summary>Who the caller is.</summary>
    [IpyRpcExport("who")]
    public static string Who(IpyRpcConnection connection) => $"{connection.Principal.Identity?.Name ?? "anonymous"} over {connection.Transport}";

    /// <summary>The id of the caller's connection.</summary>
    [IpyRpcExport("my_connection")]
    public static string MyConnection(IpyRpcConnection connection) => connection.Id;

    /// <summary>For administrators only (by config).</summary>
    [IpyRpcExport("admin_only")]
    public static string AdminOnly() => "secret stuff";
}

/// <summary>Events for the HTTP authentication tests: one anyone authenticated hears, one for administrators (by config).</summary>
public static class WhoEvents
{
    /// <summary>News for everyone.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<string> News = new("news.posted");

    /// <summary>For administrators only.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<string> Audit = new("admin.audit");
}

/// <summary>A bearer-token scheme for the tests: a fixed table of tokens, through ASP.NET Core's real authentication pipeline.</summary>
public sealed class TokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    private static readonly Dictionary<string, (string Name, string Role)> Tokens = new()
    {
        ["alice-token"] = ("alice", "user"),
        ["root-token"] = ("root", "admin"),
    };

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal)) return Task.FromResult(AuthenticateResult.NoResult());
        if (!Tokens.TryGetValue(header[7..], out (string Name, string Role) who)) return Task.FromResult(AuthenticateResult.Fail("unknown token"));
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, who.Name), new Claim(ClaimTypes.Role, who.Role)], "Bearer");
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), "Bearer")));
    }
}

public sealed class AuthTests : IAsyncLifetime
{
    private WebApplication _app = null!;
    private IpyRpcServer _server = null!;
    private Uri _address = null!;

    public async Task InitializeAsync()
    {
        _server = new IpyRpcServer();
        _server.Register(typeof(WhoFunctions)).Register(typeof(WhoEvents));
        _server.Config(new GlobConfig { ["admin_only"] = new FunctionOptions { Auth = Authorize.Role("admin") }, ["admin.*"] = new FunctionOptions { Auth = Authorize.Role("admin") } });
        WebApplicationBuilder builder = LoopbackKestrel.CreateBuilder();
        builder.Services.AddAuthentication("Bearer").AddScheme<AuthenticationSchemeOptions, TokenHandler>("Bearer", null);
        builder.Services.AddAuthorization();
        builder.Services.AddIpyRpcHttp();
        _app = builder.Build();
        _app.UseAuthentication();
        _app.UseAuthorization();
        _app.MapIpyRpc(_server).RequireAuthorization();
        await _app.StartAsync();
        _address = LoopbackKestrel.AddressOf(_app);
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        await _server.DisposeAsync();
    }

    private Task<IpyRpcClient> ConnectAsync(string? token, out HttpClient http, HttpCarrier carrier = HttpCarrier.WebSocket)
    {
        http = new HttpClient();
        if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return IpyRpcHttpClient.ConnectAsync(_address, carrier, null, http);
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket, "websocket")]
    [InlineData(HttpCarrier.Requests, "http")]
    public async Task ABearerTokenBecomesTheConnectionsPrincipalAndItsRolesCount(HttpCarrier carrier, string transport)
    {
        await using IpyRpcClient alice = await ConnectAsync("alice-token", out HttpClient http, carrier);
        using HttpClient _ = http;
        Assert.Equal($"alice over {transport}", await alice.CallAsync<string>("who"));
        Assert.Equal($"alice over {transport}", await alice.CallAsync<string>("who")); // a second request, same connection
        Assert.DoesNotContain(alice.Functions, f => f.Name == "admin_only");
        var denied = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => alice.CallAsync<string>("admin_only"));
        Assert.Contains("needs the role admin", denied.Message);

        await using IpyRpcClient root = await ConnectAsync("root-token", out HttpClient rootHttp, carrier);
        using HttpClient __ = rootHttp;
        Assert.Equal("secret stuff", await root.CallAsync<string>("admin_only"));
    }

    [Fact]
    public async Task AWrongOrMissingTokenFailsAtConnectWithTheSpecificError()
    {
        var wrong = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(async () =>
        {
            await using IpyRpcClient c = await ConnectAsync("stolen-token", out HttpClient http).WaitAsync(TimeSpan.FromSeconds(5));
        });
        Assert.Contains("credentials", wrong.Message);
        await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(async () =>
        {
            await using IpyRpcClient c = await ConnectAsync(null, out HttpClient http).WaitAsync(TimeSpan.FromSeconds(5));
        });
    }

    [Fact]
    public async Task JsonRpcCallersGetAJsonRpcErrorObjectWhenRefused()
    {
        using var http = new HttpClient { BaseAddress = _address };
        (HttpStatusCode status, JsonElement body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"who","id":1}""", null);
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal(-32004, body.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal("unauthorized", body.GetProperty("error").GetProperty("data").GetProperty("code").GetString());

        (status, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"who","id":2}""", "alice-token");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("alice over http", body.GetProperty("result").GetString());

        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"admin_only","id":3}""", "alice-token");
        Assert.Equal(-32004, body.GetProperty("error").GetProperty("code").GetInt32());
        // Submitting it as a job is refused the same way, and queues nothing.
        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"rpc.submit","params":["admin_only"],"id":6}""", "alice-token");
        Assert.Equal(-32004, body.GetProperty("error").GetProperty("code").GetInt32());
        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"rpc.submit","params":["admin_only"],"id":7}""", "root-token");
        string job = body.GetProperty("result").GetProperty("id").GetString()!;
        (_, body) = await PostAsync(http, $$"""{"jsonrpc":"2.0","method":"rpc.attach","params":["{{job}}"],"id":8}""", "root-token");
        Assert.Equal("secret stuff", body.GetProperty("result").GetString());
        // Nor may alice see, wait for or cancel that job, nor find it listed.
        foreach (string other in new[] { "rpc.status", "rpc.attach", "rpc.cancel" })
        {
            (_, body) = await PostAsync(http, $$"""{"jsonrpc":"2.0","method":"{{other}}","params":["{{job}}"],"id":9}""", "alice-token");
            Assert.Equal(-32004, body.GetProperty("error").GetProperty("code").GetInt32());
            Assert.Contains("alice may not see jobs of admin_only", body.GetProperty("error").GetProperty("message").GetString());
        }

        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"rpc.jobs","id":10}""", "alice-token");
        Assert.DoesNotContain(job, body.GetProperty("result").EnumerateArray().Select(j => j.GetProperty("id").GetString()));
        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"rpc.jobs","id":11}""", "root-token");
        Assert.Contains(job, body.GetProperty("result").EnumerateArray().Select(j => j.GetProperty("id").GetString()));
        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"rpc.discover","id":4}""", "alice-token");
        Assert.DoesNotContain("admin_only", body.GetRawText());
        (_, body) = await PostAsync(http, """{"jsonrpc":"2.0","method":"rpc.discover","id":5}""", "root-token");
        Assert.Contains("admin_only", body.GetRawText());
    }

    [Fact]
    public async Task TheEventStreamNeedsTheEndpointsCredentialsAndHearsOnlyWhatItsCallerMay()
    {
        string? aliceFrom = null; // the id alice's stream started from
        async Task<string> Lines(StreamReader reader, int count)
        {
            var lines = new List<string?>();
            while (lines.Count < count)
            {
                string? line = await reader.ReadLineAsync();
                if (line?.StartsWith("id: ", StringComparison.Ordinal) != true) lines.Add(line); // ids are not what this test reads
                else aliceFrom ??= line[4..];
            }

            return string.Join("\n", lines);
        }

        async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> Open(string? token, string query, string? lastEventId = null)
        {
            var http = new HttpClient { BaseAddress = _address };
            if (token is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            if (lastEventId is not null) http.DefaultRequestHeaders.Add("Last-Event-ID", lastEventId);
            HttpResponseMessage response = await http.GetAsync("events" + query, HttpCompletionOption.ResponseHeadersRead);
            return (response.StatusCode, response.StatusCode == HttpStatusCode.OK ? "" : await response.Content.ReadAsStringAsync(), response);
        }

        // No token: the endpoint's policy refuses before any session, in the stream's own error shape.
        (HttpStatusCode status, string body, HttpResponseMessage r1) = await Open(null, "");
        r1.Dispose();
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("unauthorized", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());

        // alice may not hear admin.audit: asked for it alone, she is refused; asked for everything, she gets the rest.
        (status, body, HttpResponseMessage r2) = await Open("alice-token", "?pattern=admin.audit");
        r2.Dispose();
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Equal("unauthorized", JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetString());
        (status, _, HttpResponseMessage alice) = await Open("alice-token", "");
        (status, _, HttpResponseMessage root) = await Open("root-token", "");
        using (alice)
        using (root)
        {
            using var aliceLines = new StreamReader(await alice.Content.ReadAsStreamAsync());
            using var rootLines = new StreamReader(await root.Content.ReadAsStreamAsync());
            Assert.Equal("event: ipyrpc.subscribed\ndata: [\"news.posted\"]", await Lines(aliceLines, 2));
            Assert.Equal("event: ipyrpc.subscribed\ndata: [\"admin.audit\",\"news.posted\"]", await Lines(rootLines, 2));
            _server.Publish(WhoEvents.Audit, "root logged in");
            _server.Publish(WhoEvents.News, "hello");
            Assert.Equal("\nevent: admin.audit\ndata: \"root logged in\"\n\nevent: news.posted\ndata: \"hello\"", await Lines(rootLines, 6));
            Assert.Equal("\nevent: news.posted\ndata: \"hello\"", await Lines(aliceLines, 3));
        }

        // alice comes back from where her stream began: the events kept since are replayed, and only those she may hear.
        Assert.NotNull(aliceFrom);
        (status, _, HttpResponseMessage again) = await Open("alice-token", "", aliceFrom);
        using (again)
        {
            Assert.Equal(HttpStatusCode.OK, status);
            using var lines = new StreamReader(await again.Content.ReadAsStreamAsync());
            Assert.Equal("event: ipyrpc.subscribed\ndata: [\"news.posted\"]\n\nevent: news.posted\ndata: \"hello\"", await Lines(lines, 5));
            _server.Publish(WhoEvents.Audit, "root logged out");
            _server.Publish(WhoEvents.News, "bye");
            Assert.Equal("\nevent: news.posted\ndata: \"bye\"", await Lines(lines, 3));
        }
    }

    [Fact]
    public async Task ASubscriptionResumedAfterAReconnectIsReplayedOnlyWhatItsCallerMayHear()
    {
        // alice over a WebSocket through a proxy: the network breaks and stays down while root's audit event and a news
        // item are published; she comes back with her token and hears the news item, never the audit.
        await using var proxy = TcpProxy.Start(_address.Port);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "alice-token");
        var options = new IpyRpcClientOptions { Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(100) } };
        await using IpyRpcClient alice = await IpyRpcHttpClient.ConnectAsync(new UriBuilder(_address) { Port = proxy.Port }.Uri, HttpCarrier.WebSocket, options, http);
        var heard = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using IpyRpcSubscription all = await alice.SubscribeAsync("*", e => heard.Enqueue($"{e.Name}: {e.Payload}"));
        Assert.Equal(["news.posted"], all.Events);
        var reconnecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        alice.Reconnecting += _ => reconnecting.TrySetResult();
        alice.Reconnected += () => reconnected.TrySetResult();
        _server.Publish(WhoEvents.News, "one");
        DateTime heardOne = DateTime.UtcNow.AddSeconds(20);
        while (heard.IsEmpty && DateTime.UtcNow < heardOne) await Task.Delay(10);

        proxy.Refusing = true;
        proxy.CloseAll();
        await reconnecting.Task.WaitAsync(TimeSpan.FromSeconds(20));
        _server.Publish(WhoEvents.Audit, "root logged in");
        _server.Publish(WhoEvents.News, "two");
        proxy.Refusing = false;
        await reconnected.Task.WaitAsync(TimeSpan.FromSeconds(20));
        _server.Publish(WhoEvents.Audit, "root logged out");
        _server.Publish(WhoEvents.News, "three");

        DateTime until = DateTime.UtcNow.AddSeconds(20);
        while (heard.Count < 3 && DateTime.UtcNow < until) await Task.Delay(10);
        await Task.Delay(100); // nothing more comes
        Assert.Equal(["news.posted: one", "news.posted: two", "news.posted: three"], heard);
        Assert.Equal((1L, 0L), (all.Replayed, all.Gaps));
    }

    [Fact]
    public async Task RequestsOfDifferentPrincipalsOnOneConnectionNeverShareASession()
    {
        // One kept-alive connection, two callers taking turns: each call runs as its own caller, and only the
        // requests of the caller who opened the connection's session share it.
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1 }) { BaseAddress = _address };
        var seen = new List<(string Token, string Who, string Connection)>();
        foreach (string token in (string[])["alice-token", "root-token", "alice-token", "root-token", "alice-token"])
        {
            (_, JsonElement who) = await PostAsync(http, """{"jsonrpc":"2.0","method":"who","id":1}""", token);
            (_, JsonElement connection) = await PostAsync(http, """{"jsonrpc":"2.0","method":"my_connection","id":2}""", token);
            seen.Add((token, who.GetProperty("result").GetString()!, connection.GetProperty("result").GetString()!));
        }

        Assert.All(seen, s => Assert.Equal(s.Token == "alice-token" ? "alice over http" : "root over http", s.Who));
        Assert.Single(seen.Where(s => s.Token == "alice-token").Select(s => s.Connection).Distinct()); // alice opened the connection's session
        Assert.Equal(2, seen.Where(s => s.Token == "root-token").Select(s => s.Connection).Distinct().Count()); // root: a session per request
        Assert.DoesNotContain(seen.First(s => s.Token == "alice-token").Connection, seen.Where(s => s.Token == "root-token").Select(s => s.Connection));
    }

    internal static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(HttpClient http, string json, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "rpc") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using HttpResponseMessage response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.False(string.IsNullOrEmpty(text), $"HTTP {(int)response.StatusCode} with an empty body");
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }
}

public sealed class SharedSecretOverHttpTests
{
    [Theory]
    [InlineData(HttpCarrier.WebSocket, "websocket")]
    [InlineData(HttpCarrier.Requests, "http")]
    public async Task TheSharedSecretAuthenticatesABinaryConnectionAcrossItsRequests(HttpCarrier carrier, string transport)
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "hunter2" });
        server.Register(typeof(WhoFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, carrier, new IpyRpcClientOptions { SharedSecret = "hunter2", ClientName = "carol" });
        for (int i = 0; i < 3; i++) Assert.Equal($"carol over {transport}", await client.CallAsync<string>("who"));

        await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => IpyRpcHttpClient.ConnectAsync(host.Address, carrier, new IpyRpcClientOptions { SharedSecret = "hunter3" }).WaitAsync(TimeSpan.FromSeconds(5)));
        using var http = new HttpClient { BaseAddress = host.Address };
        (_, JsonElement body) = await AuthTests.PostAsync(http, """{"jsonrpc":"2.0","method":"who","id":1}""", null);
        Assert.Equal(-32004, body.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Contains("shared secret", body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task AServerWithoutAuthenticationRefusesToListenBeyondLoopback()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(WhoFunctions));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => IpyRpcHttpServer.StartAsync(server, "http://0.0.0.0:0"));
        Assert.Contains("SharedSecret", e.Message);
        Assert.Contains("AllowUnauthenticatedRemote", e.Message);

        await using var guarded = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "s" });
        guarded.Register(typeof(WhoFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(guarded, "http://0.0.0.0:0");
        Assert.NotNull(host.Address);
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket, "websocket")]
    [InlineData(HttpCarrier.Requests, "http")]
    public async Task ACallerFromAnotherMachineBehindAProxyIsRefusedWithoutAuthentication(HttpCarrier carrier, string transport)
    {
        // Behind a reverse proxy, ASP.NET Core's forwarded-headers middleware makes the caller's own
        // address the connection's: here 203.0.113.9, from another machine.
        await using var server = new IpyRpcServer();
        server.Register(typeof(WhoFunctions));
        WebApplicationBuilder builder = LoopbackKestrel.CreateBuilder();
        await using WebApplication app = builder.Build();
        app.UseForwardedHeaders(new ForwardedHeadersOptions { ForwardedHeaders = ForwardedHeaders.XForwardedFor });
        app.MapIpyRpc(server);
        await app.StartAsync();
        var address = LoopbackKestrel.AddressOf(app);

        using var proxied = new HttpClient();
        proxied.DefaultRequestHeaders.Add("X-Forwarded-For", "203.0.113.9");
        var e = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => IpyRpcHttpClient.ConnectAsync(address, carrier, null, proxied).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("203.0.113.9", e.Message);

        using var local = new HttpClient();
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(address, carrier, null, local);
        Assert.Equal($"anonymous over {transport}", await client.CallAsync<string>("who")); // this machine is served
        await app.StopAsync();
    }
}

public sealed class NothingWithoutCredentialsOverHttpTests
{
    [Fact]
    public async Task NoKindOfMessageGetsThroughTheBinaryEndpointOrJsonRpcWithoutTheSecret()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "s" });
        server.Register(typeof(IpyRpc.Tests.Fuzz.FuzzFunctions));
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var http = new HttpClient { BaseAddress = host.Address };
        var sent = IpyRpc.Tests.Fuzz.Corpus.Messages.Where(m => m.Kind is MessageKind.Describe or MessageKind.Call or MessageKind.Submit or MessageKind.Attach
            or MessageKind.Status or MessageKind.List || (m.Kind == MessageKind.Cancel && m.JobId is not null)).ToArray();
        foreach (IpyRpcMessage m in sent)
        {
            using var content = new ByteArrayContent(MessageCodec.EncodeFramed(m));
            content.Headers.ContentType = new("application/x-ipyrpc");
            using HttpResponseMessage response = await http.PostAsync("ipyrpc", content);
            IpyRpcMessage reply = MessageCodec.DecodeFramed(await response.Content.ReadAsByteArrayAsync());
            Assert.Equal((MessageKind.Error, m.Id), (reply.Kind, reply.Id));
            Assert.Equal(ErrorCodes.Unauthorized, RemoteError.Decode(reply.Body.Span, reply.Serialization).Code);
        }

        string[] jobMethods =
        [
            """{"jsonrpc":"2.0","method":"rpc.submit","params":["add",[1,2]],"id":1}""",
            """{"jsonrpc":"2.0","method":"rpc.attach","params":["0123456789-1"],"id":2}""",
            """{"jsonrpc":"2.0","method":"rpc.status","params":["0123456789-1"],"id":3}""",
            """{"jsonrpc":"2.0","method":"rpc.jobs","id":4}""",
            """{"jsonrpc":"2.0","method":"rpc.cancel","params":["0123456789-1"],"id":5}""",
        ];
        foreach (string body in IpyRpc.Tests.Fuzz.Corpus.JsonRpc.Where(b => b.Contains("\"id\"")).Concat(jobMethods))
        {
            (_, JsonElement reply) = await AuthTests.PostAsync(http, body, null);
            JsonElement[] answers = reply.ValueKind == JsonValueKind.Array ? [.. reply.EnumerateArray()] : [reply];
            Assert.All(answers, a => Assert.Equal(-32004, a.GetProperty("error").GetProperty("code").GetInt32()));
        }

        // rpc.fetch and rpc.release would have the server connect to the address a pointer names: refused before that.
        using var bait = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        bait.Start();
        int port = ((IPEndPoint)bait.LocalEndpoint).Port;
        string pointer = $$"""{"type":"ipyrpc_data_pointer","protocol":"zmq","host":"127.0.0.1","port":{{port}},"path":"/data/{{new string('a', 32)}}","secret_key":"{{new string('b', 32)}}","holder":"{{new string('c', 32)}}"}""";
        foreach (string method in new[] { "rpc.fetch", "rpc.release" })
        {
            (_, JsonElement refused) = await AuthTests.PostAsync(http, $$"""{"jsonrpc":"2.0","id":1,"method":"{{method}}","params":[{{pointer}}]}""", null);
            Assert.Equal(-32004, refused.GetProperty("error").GetProperty("code").GetInt32());
        }

        await Task.Delay(200);
        Assert.False(bait.Pending()); // nothing connected to the pointer's address
        Assert.Empty(await server.Queue.ListAsync());
    }
}
