using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace IpyRpc.Http.Tests;

/// <summary>
/// Web pages in browsers: a page of another origin may neither open a WebSocket to the server (browsers apply no CORS to
/// WebSockets) nor post to it, unless its origin is listed; the server's own origin may, except under a rebound name on a
/// loopback listener. Clients that send no Origin (these tests' own HttpClient, curl, the IpyRpc clients) are untouched.
/// </summary>
public sealed class BrowserOriginTests : IAsyncLifetime
{
    private const string Listed = "http://app.example:3000";

    private IpyRpcServer _server = null!;
    private IpyRpcHttpServer _host = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
    {
        _server = new IpyRpcServer();
        _server.Register(typeof(HttpFunctions));
        _host = await IpyRpcHttpServer.StartAsync(_server, "http://127.0.0.1:0", new IpyRpcHttpOptions { AllowedOrigins = [Listed] });
        _http.BaseAddress = _host.Address;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _host.DisposeAsync();
        await _server.DisposeAsync();
    }

    private string Own => $"http://127.0.0.1:{_host.Address.Port}";

    private async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> PostAsync(string? origin, string? host = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "rpc")
        {
            Content = new StringContent("""{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}""", Encoding.UTF8, "application/json"),
        };
        if (origin is not null) request.Headers.Add("Origin", origin);
        if (host is not null) request.Headers.Host = host;
        HttpResponseMessage response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private async Task<(WebSocketState State, HttpStatusCode Status)> OpenWebSocketAsync(string origin)
    {
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("ipyrpc.v1");
        socket.Options.SetRequestHeader("Origin", origin);
        socket.Options.CollectHttpResponseDetails = true;
        var uri = new UriBuilder(_host.Address) { Scheme = "ws", Path = "/ipyrpc" }.Uri;
        try
        {
            await socket.ConnectAsync(uri, CancellationToken.None);
            return (socket.State, socket.HttpStatusCode);
        }
        catch (WebSocketException)
        {
            return (socket.State, socket.HttpStatusCode);
        }
    }

    [Fact]
    public async Task APageOfAnotherOriginCanNeitherOpenAWebSocketNorPost()
    {
        (WebSocketState state, HttpStatusCode status) = await OpenWebSocketAsync("https://evil.example");
        Assert.NotEqual(WebSocketState.Open, state);
        Assert.Equal(HttpStatusCode.Forbidden, status);

        (HttpStatusCode posted, string body, HttpResponseMessage response) = await PostAsync("https://evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, posted);
        JsonElement error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal(-32004, error.GetProperty("code").GetInt32());
        Assert.Contains("Requests from web pages of https://evil.example are refused: add the origin to IpyRpcHttpOptions.AllowedOrigins", error.GetProperty("message").GetString());
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));

        // The binary endpoint's requests and a pointer's data path likewise.
        using (var framed = new HttpRequestMessage(HttpMethod.Post, "ipyrpc") { Content = new ByteArrayContent([]) })
        {
            framed.Headers.Add("Origin", "https://evil.example");
            using HttpResponseMessage refused = await _http.SendAsync(framed);
            Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            Assert.Contains("IpyRpcHttpOptions.AllowedOrigins", await refused.Content.ReadAsStringAsync());
        }

        using (var data = new HttpRequestMessage(HttpMethod.Get, "ipyrpc/data/" + new string('a', 32)))
        {
            data.Headers.Add("Origin", "https://evil.example");
            Assert.Equal(HttpStatusCode.Forbidden, (await _http.SendAsync(data)).StatusCode);
        }

        // A client that is not a browser names no origin and is served as before.
        (HttpStatusCode plain, string answer, _) = await PostAsync(origin: null);
        Assert.Equal(HttpStatusCode.OK, plain);
        Assert.Equal(5, JsonDocument.Parse(answer).RootElement.GetProperty("result").GetInt32());
    }

    [Fact]
    public async Task APageOfTheServersOwnOriginIsServedButNotUnderARenamedLoopbackHost()
    {
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(Own)).Status);
        Assert.Equal(WebSocketState.Open, (await OpenWebSocketAsync(Own)).State);
        Assert.Equal(HttpStatusCode.OK, (await PostAsync($"http://localhost:{_host.Address.Port}", $"localhost:{_host.Address.Port}")).Status);

        // DNS rebinding: a hostile name made to resolve to 127.0.0.1 is "same origin" with itself, and is refused.
        string rebound = $"rebound.example:{_host.Address.Port}";
        (HttpStatusCode status, _, _) = await PostAsync("http://" + rebound, rebound);
        Assert.Equal(HttpStatusCode.Forbidden, status);
    }

    [Fact]
    public async Task AListedOriginGetsItsPreflightAnsweredTheCorsHeadersAndAWebSocket()
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "rpc");
        preflight.Headers.Add("Origin", Listed);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type, ipyrpc-output");
        using HttpResponseMessage answered = await _http.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.NoContent, answered.StatusCode);
        Assert.Equal(Listed, answered.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("POST", answered.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Equal("content-type, ipyrpc-output", answered.Headers.GetValues("Access-Control-Allow-Headers").Single());

        (HttpStatusCode status, string body, HttpResponseMessage response) = await PostAsync(Listed);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(5, JsonDocument.Parse(body).RootElement.GetProperty("result").GetInt32());
        Assert.Equal(Listed, response.Headers.GetValues("Access-Control-Allow-Origin").Single());

        Assert.Equal(WebSocketState.Open, (await OpenWebSocketAsync(Listed)).State);
    }
}
