using System.Buffers.Binary;
using System.Collections.Concurrent;
using IpyRpc.ZeroMq.Native;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>
/// The socket loop lets any thread that finds the socket free send on it, while its own thread receives by
/// waiting on the socket's file descriptor. These tests drive a real DEALER and ROUTER over loopback TCP
/// from many threads at once, with queues small enough that sends push back, and check that no message is
/// lost, stuck (a wake-up missed) or reordered among those one thread sent. Each runs with both wake-up
/// signals: Linux's <c>eventfd</c> and the inproc pair used where there is none.
/// </summary>
public sealed class SocketLoopTests
{
    private const int Threads = 4;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SendersOnManyThreadsShareTheSocketWithItsReceiverAndNothingIsLostStuckOrReordered(bool wakeWithPair)
    {
        const int perThread = 5_000;
        // The server records each sender's sequence numbers as they arrive and echoes every message from a
        // thread-pool thread, so its replies are sent by other threads while its I/O thread receives.
        var arrived = new ConcurrentDictionary<int, List<int>>();
        SocketLoop? router = null;
        string endpoint = "";
        router = new SocketLoop("test router", LibZmq.ROUTER, s =>
        {
            SocketLoop.SetInt(s, LibZmq.SNDHWM, 16);
            SocketLoop.SetInt(s, LibZmq.RCVHWM, 16);
            SocketLoop.SetInt(s, LibZmq.ROUTER_MANDATORY, 1);
            if (LibZmq.zmq_bind(s, "tcp://127.0.0.1:*") < 0) throw new IOException("bind failed");
            endpoint = SocketLoop.ReadLastEndpoint(s);
        }, (frames, _, _, _) =>
        {
            (int thread, int sequence) = Read(frames[1]);
            List<int> seen = arrived.GetOrAdd(thread, _ => []);
            lock (seen) seen.Add(sequence);
            ThreadPool.UnsafeQueueUserWorkItem(_ => router!.Send([frames[0], frames[1]]), null);
        }, null, 1 << 20, 8, 0, wakeWithPair: wakeWithPair);

        var echoed = new ConcurrentDictionary<long, byte>();
        using var allBack = new SemaphoreSlim(0);
        using var dealer = new SocketLoop("test dealer", LibZmq.DEALER, s =>
        {
            SocketLoop.SetInt(s, LibZmq.SNDHWM, 16);
            SocketLoop.SetInt(s, LibZmq.RCVHWM, 16);
            if (LibZmq.zmq_connect(s, endpoint) < 0) throw new IOException("connect failed");
        }, (frames, _, _, _) =>
        {
            (int thread, int sequence) = Read(frames[0]);
            if (echoed.TryAdd(((long)thread << 32) | (uint)sequence, 0) && echoed.Count == Threads * perThread) allBack.Release();
        }, null, 1 << 20, 8, 0, wakeWithPair: wakeWithPair);

        try
        {
            // Each thread sends its numbered messages as fast as it can; with queues of 16 the socket pushes back.
            Thread[] senders = [.. Enumerable.Range(0, Threads).Select(t => new Thread(() =>
            {
                for (int i = 0; i < perThread; i++) dealer.Send([Write(t, i)]);
            }))];
            foreach (Thread sender in senders) sender.Start();
            foreach (Thread sender in senders) Assert.True(sender.Join(TimeSpan.FromSeconds(30)), "a sender never returned");

            Assert.True(await allBack.WaitAsync(TimeSpan.FromSeconds(60)), $"only {echoed.Count} of {Threads * perThread} echoes came back");
            Assert.Equal(Threads, arrived.Count);
            foreach ((int thread, List<int> sequences) in arrived)
            {
                lock (sequences) Assert.Equal(Enumerable.Range(0, perThread), sequences); // every message once, in the order its thread sent them
            }
        }
        finally
        {
            router.Dispose();
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task PingPongWithRepliesSentFromAnyThreadNeverMissesAWakeUp(bool wakeWithPair, bool replyOnLoopThread)
    {
        // One message in flight: each request is sent by the test's own thread, so the dealer is used by a thread
        // other than the one waiting on its descriptor every time; each reply by a thread-pool thread, or by the
        // router's I/O thread while it handles the request (as an Inline function's reply is), which then decides
        // without ZMQ_EVENTS whether anything is left. A missed wake-up leaves a message unread and this loop waits forever.
        SocketLoop? router = null;
        string endpoint = "";
        router = new SocketLoop("test router", LibZmq.ROUTER, s =>
        {
            if (LibZmq.zmq_bind(s, "tcp://127.0.0.1:*") < 0) throw new IOException("bind failed");
            endpoint = SocketLoop.ReadLastEndpoint(s);
        }, (frames, _, _, _) =>
        {
            if (replyOnLoopThread) router!.Send([frames[0], frames[1]]);
            else ThreadPool.UnsafeQueueUserWorkItem(_ => router!.Send([frames[0], frames[1]]), null);
        }, null, 1 << 20, 8, 0, wakeWithPair: wakeWithPair);

        var replies = new BlockingCollection<byte[]>();
        using var dealer = new SocketLoop("test dealer", LibZmq.DEALER, s =>
        {
            if (LibZmq.zmq_connect(s, endpoint) < 0) throw new IOException("connect failed");
        }, (frames, _, _, _) => replies.Add(frames[0].ToArray()), null, 1 << 20, 8, 0, wakeWithPair: wakeWithPair);

        try
        {
            await Task.Run(() =>
            {
                for (int i = 0; i < 5_000; i++)
                {
                    dealer.Send([Write(0, i)]);
                    Assert.True(replies.TryTake(out byte[]? reply, TimeSpan.FromSeconds(10)), $"reply {i} never came");
                    Assert.Equal(i, Read(reply).Sequence);
                }
            });
        }
        finally
        {
            router.Dispose();
        }
    }

    private static byte[] Write(int thread, int sequence)
    {
        byte[] bytes = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, thread);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), sequence);
        return bytes;
    }

    private static (int Thread, int Sequence) Read(ReadOnlyMemory<byte> bytes) => (BinaryPrimitives.ReadInt32LittleEndian(bytes.Span), BinaryPrimitives.ReadInt32LittleEndian(bytes.Span[4..]));
}
