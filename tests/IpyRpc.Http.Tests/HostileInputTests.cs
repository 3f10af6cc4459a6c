using System.Net;
using System.Text;
using System.Text.Json;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>Inputs an outside client sent that used to get an empty 500 or be misread; each must get its specific answer.</summary>
public sealed class HostileInputTests(HttpFixture fixture) : IClassFixture<HttpFixture>
{
    private async Task<(HttpStatusCode Status, byte[] Body)> PostBinaryAsync(IpyRpcMessage message)
    {
        using var content = new ByteArrayContent(MessageCodec.EncodeFramed(message));
        content.Headers.ContentType = new("application/x-ipyrpc");
        using HttpResponseMessage response = await fixture.Http.PostAsync("ipyrpc", content);
        return (response.StatusCode, await response.Content.ReadAsByteArrayAsync());
    }

    private async Task<(HttpStatusCode Status, string Body)> PostJsonAsync(byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new("application/json");
        using HttpResponseMessage response = await fixture.Http.PostAsync("rpc", content);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AHugeTimeoutOverTheBinaryEndpointGetsItsResultNotA500()
    {
        (HttpStatusCode status, byte[] body) = await PostBinaryAsync(new IpyRpcMessage { Kind = MessageKind.Call, Id = 5, Function = "add", TimeoutMs = long.MaxValue, Parts = [new byte[] { 0x92, 0x02, 0x03 }] });
        Assert.Equal(HttpStatusCode.OK, status);
        IpyRpcMessage reply = MessageCodec.DecodeFramed(body);
        Assert.Equal(MessageKind.Result, reply.Kind);
        Assert.Equal(5, new MessagePackReader(reply.Body.Span).ReadInt32());
    }

    [Fact]
    public async Task InvalidUtf8InJsonRpcIsAParseErrorAloneAndAnInvalidRequestInABatch()
    {
        byte[] bad = [.. "{\"jsonrpc\":\"2.0\",\"method\":\"a"u8, 0xFF, 0xFE, .. "dd\",\"params\":[1,2],\"id\":1}"u8];
        (HttpStatusCode status, string body) = await PostJsonAsync(bad);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(-32700, JsonDocument.Parse(body).RootElement.GetProperty("error").GetProperty("code").GetInt32());

        byte[] badParams = [.. "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[\"a"u8, 0xFF, .. "\",1],\"id\":4}"u8];
        byte[] batch = [.. "[{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[1,2],\"id\":1},"u8, .. bad, (byte)',', .. badParams, .. ",{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[3,4],\"id\":3}]"u8];
        (status, body) = await PostJsonAsync(batch);
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement[] answers = [.. JsonDocument.Parse(body).RootElement.EnumerateArray()];
        Assert.Equal(4, answers.Length); // each request gets its own answer
        Assert.Equal(3, answers.Single(a => a.GetProperty("id").ValueKind == JsonValueKind.Number && a.GetProperty("id").GetInt32() == 1).GetProperty("result").GetInt32());
        Assert.Equal(7, answers.Single(a => a.GetProperty("id").ValueKind == JsonValueKind.Number && a.GetProperty("id").GetInt32() == 3).GetProperty("result").GetInt32());
        JsonElement[] refused = [.. answers.Where(a => a.TryGetProperty("error", out _))];
        Assert.Equal(2, refused.Length);
        Assert.All(refused, a => Assert.Equal(-32600, a.GetProperty("error").GetProperty("code").GetInt32()));
        // Invalid text in the params is found before the call is made (the function would have refused "a?" as an int otherwise: -32602).
        JsonElement inParams = refused.Single(a => a.GetProperty("id").ValueKind == JsonValueKind.Number);
        Assert.Equal(4, inParams.GetProperty("id").GetInt32());
        Assert.Contains("UTF-8", inParams.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task IntegralJsonNumbersAreAcceptedForIntegersAndFractionsAreRefused()
    {
        (_, string body) = await PostJsonAsync("""{"jsonrpc":"2.0","method":"add","params":[2.0,1e2],"id":1}"""u8.ToArray());
        Assert.Equal(102, JsonDocument.Parse(body).RootElement.GetProperty("result").GetInt32());
        (_, body) = await PostJsonAsync("""{"jsonrpc":"2.0","method":"add","params":[2.5,1],"id":2}"""u8.ToArray());
        JsonElement error = JsonDocument.Parse(body).RootElement.GetProperty("error");
        Assert.Equal(-32602, error.GetProperty("code").GetInt32());
        Assert.Contains("2.5", error.GetProperty("message").GetString());
    }
}
