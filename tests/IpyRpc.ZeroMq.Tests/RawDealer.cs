using System.Collections.Concurrent;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>A bare DEALER socket that sends whatever frames a test gives it, valid or not.</summary>
internal sealed class RawDealer : IDisposable
{
    private readonly BlockingCollection<List<byte[]>> _received = [];
    private readonly SocketLoop _loop;

    public RawDealer(string endpoint)
    {
        _loop = new SocketLoop("test raw dealer", LibZmq.DEALER, s =>
        {
            SocketLoop.SetInt(s, LibZmq.RECONNECT_IVL, 50);
            if (LibZmq.zmq_connect(s, endpoint) < 0) throw new IOException("connect failed");
        }, (frames, _, _, _) => _received.Add([.. frames.Select(f => f.ToArray())]), null, long.MaxValue / 4, 1000, 0);
    }

    public void Send(params byte[][] frames) => _loop.Send([.. frames.Select(f => (ReadOnlyMemory<byte>)f)]);

    public List<byte[]>? Receive(TimeSpan timeout) => _received.TryTake(out List<byte[]>? frames, timeout) ? frames : null;

    public IpyRpcMessage ReceiveMessage()
    {
        List<byte[]> frames = Receive(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException("No reply from the server.");
        return MessageCodec.DecodeHeader(frames[0], [.. frames.Skip(1).Select(f => (ReadOnlyMemory<byte>)f)]);
    }

    public void Dispose() => _loop.Dispose();
}
