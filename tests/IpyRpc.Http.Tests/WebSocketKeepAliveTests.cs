using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using IpyRpc.Http;
using IpyRpc.Protocol;

namespace IpyRpc.Http.Tests;

/// <summary>A WebSocket client that vanished without closing (it no longer answers pings) is given up after the keep-alive timeout.</summary>
public sealed class WebSocketKeepAliveTests
{
    [Fact]
    public async Task AClientThatStopsAnsweringPingsIsDisconnectedAsConnectionLost()
    {
        await using var server = new IpyRpcServer();
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gone = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        server.ClientConnected += _ => connected.TrySetResult();
        server.ClientDisconnected += (_, why) => gone.TrySetResult(why);
        await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions
        {
            WebSocketKeepAlive = TimeSpan.FromMilliseconds(200),
            WebSocketKeepAliveTimeout = TimeSpan.FromMilliseconds(600),
        });

        // A raw client: the upgrade by hand, one hello, then silence (it never reads, so it never pongs).
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(host.Address.Host, host.Address.Port);
        NetworkStream stream = tcp.GetStream();
        string key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"GET /ipyrpc HTTP/1.1\r\nHost: {host.Address.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ipyrpc.v1\r\n\r\n"));
        string response = await ReadHeadAsync(stream);
        Assert.StartsWith("HTTP/1.1 101", response);
        Assert.Contains("Sec-WebSocket-Protocol: ipyrpc.v1", response);
        await stream.WriteAsync(MaskedBinaryFrame(MessageCodec.EncodeFramed(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [1] })));
        await connected.Task.WaitAsync(TimeSpan.FromSeconds(10));

        DisconnectInfo why = await gone.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DisconnectReason.ConnectionLost, why.Reason);
        Assert.Empty(server.Connections);
    }

    private static async Task<string> ReadHeadAsync(NetworkStream stream)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await stream.ReadAsync(one) == 1) head.Append((char)one[0]);
        return head.ToString();
    }

    private static byte[] MaskedBinaryFrame(byte[] payload)
    {
        var frame = new List<byte> { 0x82 }; // FIN, binary
        if (payload.Length < 126) frame.Add((byte)(0x80 | payload.Length));
        else
        {
            frame.Add(0x80 | 126);
            frame.Add((byte)(payload.Length >> 8));
            frame.Add((byte)payload.Length);
        }

        byte[] mask = RandomNumberGenerator.GetBytes(4);
        frame.AddRange(mask);
        for (int i = 0; i < payload.Length; i++) frame.Add((byte)(payload[i] ^ mask[i % 4]));
        return [.. frame];
    }
}
