using IpyRpc.Protocol;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>A server that is reachable (ZeroMQ keeps the TCP connection alive) but no longer answers is noticed by the client's heartbeat.</summary>
public sealed class HeartbeatTests
{
    [Fact]
    public async Task AServerThatStopsAnsweringPingsIsReportedAsHeartbeatLost()
    {
        // A bare ROUTER that answers hello and describe, then nothing: not even pong.
        string bound = "";
        SocketLoop? router = null;
        router = new SocketLoop("test silent router", LibZmq.ROUTER, s =>
        {
            if (LibZmq.zmq_bind(s, "tcp://127.0.0.1:*") < 0) throw new IOException("bind failed");
            bound = SocketLoop.ReadLastEndpoint(s);
        }, (frames, _, _, _) =>
        {
            IpyRpcMessage m = MessageCodec.DecodeHeader(frames[1].Span, frames.GetRange(2, frames.Count - 2));
            IpyRpcMessage? reply = m.Kind switch
            {
                MessageKind.Hello => new IpyRpcMessage { Kind = MessageKind.Hello, Id = m.Id, Versions = [1], Agent = "silent" },
                MessageKind.Describe => new IpyRpcMessage { Kind = MessageKind.Result, Id = m.Id, Parts = [new byte[] { 0x90 }, new byte[] { 0x90 }] },
                _ => null,
            };
            if (reply is not null)
            {
                router!.Send([frames[0], MessageCodec.EncodeHeader(reply), .. reply.Parts]);
            }
        }, null, 1 << 20, 64, 0);
        using SocketLoop _ = router;

        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(bound, new IpyRpcClientOptions
        {
            HeartbeatInterval = TimeSpan.FromMilliseconds(200),
            HeartbeatTimeout = TimeSpan.FromSeconds(1),
            Reconnect = null,
        });
        var why = new TaskCompletionSource<DisconnectInfo>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Disconnected += info => why.TrySetResult(info);
        DisconnectInfo info = await why.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DisconnectReason.HeartbeatLost, info.Reason);
        Assert.False(client.IsConnected);
        var e = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<int>("anything"));
        Assert.Contains("heartbeat", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task AClientGivesUpReconnectingAfterMaxAttemptsAndSaysSo()
    {
        ZmqServer s = ZmqServer.Start();
        await using IpyRpcClient client = await s.ConnectAsync(new IpyRpcClientOptions
        {
            ConnectTimeout = TimeSpan.FromSeconds(3), // each reconnect attempt waits this long for a hello that never comes
            Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(50), MaxAttempts = 2 },
        });
        var attempts = new System.Collections.Concurrent.ConcurrentQueue<int>();
        client.Reconnecting += a => attempts.Enqueue(a.Attempt);
        await s.DisposeAsync(); // gone for good

        DateTime until = DateTime.UtcNow.AddSeconds(40);
        IpyRpcConnectionException? final = null;
        while (DateTime.UtcNow < until)
        {
            final = await Assert.ThrowsAnyAsync<IpyRpcConnectionException>(() => client.CallAsync<int>("add", 1, 2));
            if (final.Message.Contains("gave up", StringComparison.Ordinal)) break;
            await Task.Delay(50);
        }

        Assert.Contains("gave up reconnecting after 2 attempts", final!.Message);
        Assert.Equal([1, 2], attempts);
        Assert.False(client.IsConnected);
    }
}
