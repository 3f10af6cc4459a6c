using System.Collections.Concurrent;
using IpyRpc.MessagePack;
using IpyRpc.Protocol;
using IpyRpc.Tests.BothWays;

namespace IpyRpc.Tests;

/// <summary>
/// A subscriber whose transport takes events slower than they are published: the server's
/// per-connection buffer (EventBufferSize) and its overflow policy decide, and the publisher never waits.
/// </summary>
public sealed class EventOverflowTests
{
    private sealed record Run(List<int> Numbers, long DroppedReported, List<DisconnectInfo> Disconnects);

    // A session whose transport is stuck on the first event until the gate opens; 10 events are published meanwhile.
    private static async Task<Run> PublishWhileStuckAsync(EventOverflow policy)
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { EventBufferSize = 4, EventOverflow = policy });
        server.Register(typeof(BothWaysEvents));
        var disconnects = new List<DisconnectInfo>();
        server.ClientDisconnected += (_, why) => { lock (disconnects) disconnects.Add(why); };
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var events = new ConcurrentQueue<IpyRpcMessage>();
        var connection = new IpyRpcConnection("test", null);
        ServerSession session = server.CreateSession(async (message, _) =>
        {
            if (message.Kind != MessageKind.Event) return;
            await gate.Task;
            events.Enqueue(message);
        }, connection);
        await session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [1] });
        await session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Subscribe, Id = 2, Function = "bw.ticked" });

        for (int n = 0; n < 10; n++)
        {
            Task<int> publish = Task.Run(() => server.Publish(BothWaysEvents.Ticked, new Tick(n, "")));
            Assert.True(publish.Wait(TimeSpan.FromSeconds(5)), "Publish waited for a stuck subscriber");
        }

        gate.SetResult();
        // The stuck event and the four buffered ones go out now (for Disconnect, nothing more comes).
        DateTime until = DateTime.UtcNow.AddSeconds(10);
        while (policy != EventOverflow.Disconnect && events.Count < 5 && DateTime.UtcNow < until) await Task.Delay(20);
        await Task.Delay(200); // and nothing after them
        var numbers = new List<int>();
        long dropped = 0;
        foreach (IpyRpcMessage e in events)
        {
            var reader = new MessagePackReader(e.Body.Span);
            numbers.Add(BothWaysEvents.Ticked.Formatter.Read(ref reader).Number);
            dropped += e.Dropped ?? 0;
        }

        await session.DisposeAsync();
        lock (disconnects) return new Run(numbers, dropped, [.. disconnects]);
    }

    [Fact]
    public async Task DropOldestKeepsTheNewestAndSaysHowManyWereDropped()
    {
        Run run = await PublishWhileStuckAsync(EventOverflow.DropOldest);
        Assert.Equal([0, 6, 7, 8, 9], run.Numbers); // 0 was in the transport already; the buffer of 4 kept the last four
        Assert.Equal(5, run.DroppedReported);
        Assert.DoesNotContain(run.Disconnects, d => d.Reason == DisconnectReason.ClosedByServer); // dropping is not disconnecting
    }

    [Fact]
    public async Task DropNewestKeepsTheFirstAndSaysHowManyWereDropped()
    {
        Run run = await PublishWhileStuckAsync(EventOverflow.DropNewest);
        Assert.Equal([0, 1, 2, 3, 4], run.Numbers);
        Assert.Equal(5, run.DroppedReported);
    }

    [Fact]
    public async Task DisconnectClosesTheConnectionThatFellBehindAndSaysWhy()
    {
        Run run = await PublishWhileStuckAsync(EventOverflow.Disconnect);
        DisconnectInfo why = Assert.Single(run.Disconnects);
        Assert.Equal(DisconnectReason.ClosedByServer, why.Reason);
        Assert.Contains("fell 4 events behind", why.Message);
        Assert.True(run.Numbers.Count <= 1, $"events after the disconnect: {string.Join(",", run.Numbers)}");
    }
}
