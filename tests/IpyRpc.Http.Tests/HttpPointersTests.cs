using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using IpyRpc.Tests.Pointers;

namespace IpyRpc.Http.Tests;

public sealed class HttpPointersTests : PointersContract
{
    protected override string Protocol => "http";

    protected override async Task<IAsyncDisposable?> ServeAsync(IpyRpcServer server) => await IpyRpcHttpServer.StartAsync(server);

    protected override Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, IAsyncDisposable? host, IpyRpcClientOptions options)
        => IpyRpcHttpClient.ConnectAsync(((IpyRpcHttpServer)host!).Address, HttpCarrier.WebSocket, options);

    [Fact]
    public async Task APlainGetOfThePointersPathReadsTheValueOrRowsWithTheKeyInAHeader()
    {
        await using var host = await IpyRpcHttpServer.StartAsync(Server);
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address);
        RemotePointer<double[,]> pointer = await client.CallPointerAsync<double[,]>("ptr.matrix", 100, 3);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{pointer.Host}:{pointer.Port}") };

        async Task<HttpResponseMessage> Get(string query, string? key, string accept = "application/json", string method = "GET")
        {
            var request = new HttpRequestMessage(new HttpMethod(method), pointer.Path + query);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(accept));
            if (key is not null) request.Headers.Add("IpyRpc-Key", key);
            return await http.SendAsync(request);
        }

        // The seeds' ndarray JSON, only the rows asked for.
        using (HttpResponseMessage rows = await Get("?start=2&stop=4", pointer.SecretKey))
        {
            Assert.Equal(HttpStatusCode.OK, rows.StatusCode);
            using JsonDocument json = JsonDocument.Parse(await rows.Content.ReadAsStringAsync());
            Assert.Equal("<f8", json.RootElement.GetProperty("dtype").GetString());
            Assert.Equal([2, 3], json.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(6.0, json.RootElement.GetProperty("data")[0][0].GetDouble());
        }

        // MessagePack by default: the same block a fetch gets.
        using (HttpResponseMessage whole = await Get("", pointer.SecretKey, "application/msgpack"))
        {
            Assert.Equal("application/msgpack", whole.Content.Headers.ContentType!.MediaType);
            byte[] body = await whole.Content.ReadAsByteArrayAsync();
            var reader = new MessagePack.MessagePackReader(body);
            double[,] matrix = Formatting.Formatters.DoubleArray2D.Read(ref reader)!;
            Assert.Equal(299.0, matrix[99, 2]);
        }

        using (HttpResponseMessage denied = await Get("", new string('0', 32)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
            Assert.Contains("\"code\":\"pointer_denied\"", await denied.Content.ReadAsStringAsync());
        }

        // HEAD: the same status and length, no body (curl -I).
        using (HttpResponseMessage head = await Get("?start=2&stop=4", pointer.SecretKey, "application/msgpack", "HEAD"))
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            using HttpResponseMessage get = await Get("?start=2&stop=4", pointer.SecretKey, "application/msgpack");
            Assert.Equal((await get.Content.ReadAsByteArrayAsync()).Length, head.Content.Headers.ContentLength);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }

        using (HttpResponseMessage headDenied = await Get("", null, method: "HEAD")) Assert.Equal(HttpStatusCode.Forbidden, headDenied.StatusCode);
        using (HttpResponseMessage noKey = await Get("", null))
        {
            Assert.Equal(HttpStatusCode.Forbidden, noKey.StatusCode);
            Assert.Contains("the pointer's own secret_key", await noKey.Content.ReadAsStringAsync()); // an apostrophe as itself, not \u0027
        }

        using (HttpResponseMessage badRow = await Get("?start=x", pointer.SecretKey)) Assert.Equal(HttpStatusCode.BadRequest, badRow.StatusCode);
        await client.ReleaseAsync(pointer);
        using (HttpResponseMessage gone = await Get("", pointer.SecretKey))
        {
            Assert.Equal(HttpStatusCode.Gone, gone.StatusCode);
            Assert.Contains("\"code\":\"pointer_released\"", await gone.Content.ReadAsStringAsync());
        }
    }
}
