using System.Net.WebSockets;
using IpyRpc.Http;
using IpyRpc.Protocol;
using IpyRpc.Tests.BothWays;
using Microsoft.AspNetCore.Builder;

namespace IpyRpc.Http.Tests;

/// <summary>The WebSocket carrier as PROTOCOL.md describes it, spoken by a raw WebSocket, and inside an app that uses ASP.NET's own WebSocket middleware.</summary>
public sealed class WebSocketCarrierTests
{
    [Fact]
    public async Task AnUnreadableMessageGetsAnErrorAndTheConnectionGoesOnAndAnOversizedOneClosesIt()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxMessageBytes = 4096 });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("ipyrpc.v1");
        await socket.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(host.Address), CancellationToken.None);
        Assert.Equal("ipyrpc.v1", socket.SubProtocol);

        await socket.SendAsync(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 }, WebSocketMessageType.Binary, true, CancellationToken.None);
        IpyRpcMessage refusal = await ReceiveAsync(socket);
        Assert.Equal(MessageKind.Error, refusal.Kind);

        await socket.SendAsync(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 7, Versions = [1] }), WebSocketMessageType.Binary, true, CancellationToken.None);
        IpyRpcMessage hello = await ReceiveAsync(socket);
        Assert.Equal(MessageKind.Hello, hello.Kind);
        Assert.Equal(7UL, hello.Id);

        // Over the limit but read whole: a too_large error, and the connection goes on.
        byte[] big = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Call, Id = 8, Function = "x", Parts = [new byte[16 * 1024]] });
        await socket.SendAsync(big, WebSocketMessageType.Binary, true, CancellationToken.None);
        IpyRpcMessage tooLarge = await ReceiveAsync(socket);
        Assert.Equal(MessageKind.Error, tooLarge.Kind);
        Assert.Equal(ErrorCodes.TooLarge, RemoteError.Decode(tooLarge.Body.Span, tooLarge.Serialization).Code);
        await socket.SendAsync(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 9 }), WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(MessageKind.Pong, (await ReceiveAsync(socket)).Kind);

        // Far over it: the WebSocket is closed with 1009 before the rest is read.
        byte[] huge = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Call, Id = 10, Function = "x", Parts = [new byte[1024 * 1024]] });
        await socket.SendAsync(huge, WebSocketMessageType.Binary, true, CancellationToken.None);
        var buffer = new byte[1024];
        WebSocketReceiveResult closing;
        do closing = await socket.ReceiveAsync(buffer, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        while (closing.MessageType != WebSocketMessageType.Close);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, closing.CloseStatus);
    }

    [Theory]
    [InlineData("ipyrpc.v1")]
    [InlineData("ipyrpc.v1.packed")]
    public async Task AClientStillSendingAMessageTooLargeGetsTheCloseThatSaysSo(string subProtocol)
    {
        // The server stops reading 64 KiB past its limit and closes with 1009 while the client still sends megabytes (more
        // than the sockets' buffers take in, so that the server's end still has bytes to read when it closes): it
        // drops what still comes until the client's close, so the connection is not reset and the close reaches the client.
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxMessageBytes = 4096 });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol(subProtocol);
        await socket.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(host.Address), CancellationToken.None);
        byte[] huge = MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = "x", Parts = [new byte[8 << 20]] });
        Task<WebSocketReceiveResult> closing = ReceiveCloseAsync(socket);
        for (int at = 0; at < huge.Length; at += 64 * 1024)
        {
            int length = Math.Min(64 * 1024, huge.Length - at);
            await socket.SendAsync(huge.AsMemory(at, length), WebSocketMessageType.Binary, at + length == huge.Length, CancellationToken.None);
        }

        WebSocketReceiveResult closed = await closing;
        Assert.Equal(WebSocketMessageType.Close, closed.MessageType);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, closed.CloseStatus);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
    }

    [Fact]
    public async Task OnAServerThatRequiresAuthenticationAWebSocketThatDoesNotAuthenticateInTimeIsClosed()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "right", AuthenticationTimeout = TimeSpan.FromSeconds(1) });
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server);
        using var socket = new ClientWebSocket();
        socket.Options.AddSubProtocol("ipyrpc.v1");
        await socket.ConnectAsync(IpyRpcHttpClient.WebSocketAddress(host.Address), CancellationToken.None);
        await socket.SendAsync(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [1] }), WebSocketMessageType.Binary, true, CancellationToken.None);
        Assert.Equal(["secret"], (await ReceiveAsync(socket)).Auth);

        // It says hello and nothing more: once the timeout has passed, the server says why it closes, and closes.
        IpyRpcMessage close = await ReceiveAsync(socket);
        Assert.Equal(MessageKind.Close, close.Kind);
        DisconnectInfo why = DisconnectInfo.FromMessage(close, "the server");
        Assert.Equal(DisconnectReason.Unauthorized, why.Reason);
        Assert.Contains("did not authenticate within 1 s", why.Message);
        Assert.Equal(WebSocketMessageType.Close, (await ReceiveCloseAsync(socket)).MessageType);
        Assert.Empty(server.Connections);

        // A client that proves the secret at once stays past the timeout.
        await using IpyRpcClient proven = await IpyRpcHttpClient.ConnectAsync(host.Address, HttpCarrier.WebSocket, new IpyRpcClientOptions { SharedSecret = "right" });
        await Task.Delay(2000);
        Assert.True(proven.IsConnected);
        Assert.Single(server.Connections);
    }

    private static async Task<WebSocketReceiveResult> ReceiveCloseAsync(ClientWebSocket socket)
    {
        var buffer = new byte[1024];
        WebSocketReceiveResult result;
        do result = await socket.ReceiveAsync(buffer, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        while (result.MessageType != WebSocketMessageType.Close);
        return result;
    }

    [Fact]
    public async Task AnAppWithAspNetCoresWebSocketMiddlewareServesTheCarrierToo()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ServerSide));
        WebApplicationBuilder builder = LoopbackKestrel.CreateBuilder();
        await using WebApplication app = builder.Build();
        app.UseWebSockets();
        app.MapIpyRpc(server);
        await app.StartAsync();
        var address = LoopbackKestrel.AddressOf(app);

        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.WebSocket, new IpyRpcClientOptions { Exports = [typeof(CallerSide)], Output = (_, _) => { } });
        Assert.StartsWith("answer to middleware", await client.CallAsync<string>("bw.ask_caller", "middleware")); // a call back to the client
        Assert.Equal("websocket", Assert.Single(server.Connections).Transport);
        await app.StopAsync();
    }

    private static async Task<IpyRpcMessage> ReceiveAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        int filled = 0;
        WebSocketReceiveResult result;
        do
        {
            result = await socket.ReceiveAsync(new ArraySegment<byte>(buffer, filled, buffer.Length - filled), new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            filled += result.Count;
        }
        while (!result.EndOfMessage);
        return MessageCodec.DecodeFramed(buffer.AsMemory(0, filled).ToArray());
    }
}
