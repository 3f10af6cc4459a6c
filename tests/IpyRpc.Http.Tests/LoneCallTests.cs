using System.Text;

namespace IpyRpc.Http.Tests;

/// <summary>Which JSON-RPC bodies the one-pass reader takes as a lone call, and what it reads from them.</summary>
public sealed class LoneCallTests
{
    private static bool TryRead(string body, out LoneCall call) => LoneCall.TryRead(Encoding.UTF8.GetBytes(body), 64, out call);

    [Fact]
    public void AWellFormedCallIsReadWithItsParamsBytesAndRawId()
    {
        byte[] body = Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","method":"add","params":{"a":[1, 2]},"id":"a\"b"}""");
        Assert.True(LoneCall.TryRead(body, 64, out LoneCall call));
        Assert.Equal("add", call.Method);
        Assert.Equal("""{"a":[1, 2]}""", Encoding.UTF8.GetString(call.Parameters.Span));
        // The params are the body's own bytes, not a copy.
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(call.Parameters, out ArraySegment<byte> segment));
        Assert.Same(body, segment.Array);
        Assert.Equal("\"a\\\"b\"", call.Id);
        Assert.False(call.Notification);

        Assert.True(TryRead("""{"jsonrpc":"2.0","method":"ping"}""", out LoneCall notification));
        Assert.True(notification.Notification);
        Assert.Null(notification.Id);
        Assert.True(notification.Parameters.IsEmpty);

        Assert.True(TryRead("""{"jsonrpc":"2.0","method":"ping","id":null}""", out LoneCall nullId));
        Assert.False(nullId.Notification);
        Assert.Equal("null", nullId.Id);
    }

    [Theory]
    [InlineData("""[{"jsonrpc":"2.0","method":"add","id":1}]""")] // a batch
    [InlineData("""{"jsonrpc":"2.0","method":"add","id":1,"extra":0}""")] // an unknown member
    [InlineData("""{"jsonrpc":"2.0","method":"add","method":"add","id":1}""")] // a repeated member
    [InlineData("""{"jsonrpc":"1.0","method":"add","id":1}""")] // the wrong version
    [InlineData("""{"method":"add","id":1}""")] // no version
    [InlineData("""{"jsonrpc":"2.0","id":1}""")] // no method
    [InlineData("""{"jsonrpc":"2.0","method":7,"id":1}""")] // a method that is not a string
    [InlineData("""{"jsonrpc":"2.0","method":"add","params":3,"id":1}""")] // params neither array nor object
    [InlineData("""{"jsonrpc":"2.0","method":"add","id":[1]}""")] // an id of the wrong type
    [InlineData("""{"jsonrpc":"2.0","method":"add","id":1} x""")] // something after it
    [InlineData("""{"jsonrpc":"2.0","method":"add","id":1""")] // cut short
    [InlineData("""{"jsonrpc":"2.0","method":"add","params":[[[[[[[[1]]]]]]]],"id":1}""")] // deeper than allowed (8 below)
    [InlineData("\"just a string\"")]
    [InlineData("")]
    public void AnythingElseIsLeftToTheDocument(string body)
    {
        Assert.False(LoneCall.TryRead(Encoding.UTF8.GetBytes(body), 8, out _));
    }

    [Fact]
    public void InvalidUtf8IsLeftToTheDocument()
    {
        byte[] body = [.. "{\"jsonrpc\":\"2.0\",\"method\":\"a"u8, 0xff, .. "\",\"id\":1}"u8];
        Assert.False(LoneCall.TryRead(body, 64, out _));
    }
}
