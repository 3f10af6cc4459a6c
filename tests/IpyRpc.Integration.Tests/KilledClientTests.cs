using System.Collections.Concurrent;
using IpyRpc.Http;
using IpyRpc.ZeroMq;

namespace IpyRpc.Integration.Tests;

/// <summary>A client process that is killed (no goodbye, no chance to clean up) is noticed once, with the reason, over every duplex transport.</summary>
public sealed class KilledClientTests
{
    [Theory]
    [InlineData("zeromq")]
    [InlineData("websocket")]
    public async Task AKilledClientProcessIsDisconnectedExactlyOnce(string transport)
    {
        await using var server = new IpyRpcServer();
        var connected = new TaskCompletionSource<IpyRpcConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
        var disconnected = new ConcurrentQueue<(IpyRpcConnection Connection, DisconnectInfo Info)>();
        server.ClientConnected += c => connected.TrySetResult(c);
        server.ClientDisconnected += (c, info) => disconnected.Enqueue((c, info));

        IAsyncDisposable host;
        string address;
        if (transport == "zeromq")
        {
            IpyRpcZeroMqServer zmq = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
            (host, address) = (zmq, zmq.Endpoint);
        }
        else
        {
            IpyRpcHttpServer http = await IpyRpcHttpServer.StartAsync(server);
            (host, address) = (http, http.Address.ToString());
        }

        await using (host)
        {
            await using WorkerProcess client = await WorkerProcess.StartAsync("--client-" + (transport == "zeromq" ? "zmq" : "ws"), address);
            IpyRpcConnection connection = await connected.Task.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(transport, connection.Transport);

            // The server calls the client process back: it answers from its own process.
            Assert.Equal(client.Pid, await connection.CallAsync<int>("work.pid"));

            client.Kill();
            DateTime until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (disconnected.IsEmpty && DateTime.UtcNow < until) await Task.Delay(20);
            await Task.Delay(500); // time for a second (wrong) report to show up
            (IpyRpcConnection gone, DisconnectInfo info) = Assert.Single(disconnected);
            Assert.Same(connection, gone);
            Assert.Contains(info.Reason, new[] { DisconnectReason.ConnectionLost, DisconnectReason.HeartbeatLost });
            Assert.Empty(server.Connections);
            await Assert.ThrowsAnyAsync<IpyRpcException>(() => connection.CallAsync<int>("work.pid"));
            Assert.Throws<ArgumentException>(() => System.Diagnostics.Process.GetProcessById(client.Pid)); // nothing left behind
        }
    }
}
