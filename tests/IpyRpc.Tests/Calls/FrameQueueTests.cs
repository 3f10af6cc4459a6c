using IpyRpc.Transports;

namespace IpyRpc.Tests.Calls;

/// <summary>The in-process connection's queue of frames: order, a reader's wait, its cancellation, the end.</summary>
public sealed class FrameQueueTests
{
    private static InProcessTransport.Frame Frame(int writer, int n) => new(new byte[] { (byte)writer, (byte)(n >> 16), (byte)(n >> 8), (byte)n }, null);

    [Fact]
    public async Task AReaderGetsEveryFrameOfManyWritersEachInItsOrder()
    {
        var queue = new FrameQueue();
        const int Writers = 4, Each = 20_000;
        Task[] writers = [.. Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            for (int i = 0; i < Each; i++)
            {
                Assert.True(queue.TryWrite(Frame(w, i), deferWake: false));
                if (i % 1000 == 0) Thread.Yield(); // let the reader find the queue empty and wait, now and then
            }
        }))];

        int[] next = new int[Writers];
        int received = 0;
        while (received < Writers * Each)
        {
            if (!queue.TryRead(out InProcessTransport.Frame frame))
            {
                Assert.True(await queue.WaitToReadAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10)), "the queue ended early");
                continue;
            }

            byte[] b = frame.Bytes.ToArray();
            int writer = b[0], n = (b[1] << 16) | (b[2] << 8) | b[3];
            Assert.Equal(next[writer], n);
            next[writer]++;
            received++;
        }

        await Task.WhenAll(writers);
        Assert.All(next, n => Assert.Equal(Each, n));
    }

    [Fact]
    public async Task AWaitingReaderIsWokenByAWriteFromAnotherThread()
    {
        var queue = new FrameQueue();
        for (int round = 0; round < 200; round++)
        {
            ValueTask<bool> waiting = queue.WaitToReadAsync(CancellationToken.None);
            _ = Task.Run(() => queue.TryWrite(Frame(0, round), deferWake: true)); // not on a lent thread: woken at once
            Assert.True(await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(10)), $"round {round}");
            Assert.True(queue.TryRead(out _));
        }
    }

    [Fact]
    public async Task AWaitThatIsCancelledThrowsAndTheQueueGoesOn()
    {
        var queue = new FrameQueue();
        using var cancel = new CancellationTokenSource();
        ValueTask<bool> waiting = queue.WaitToReadAsync(cancel.Token);
        Assert.False(waiting.IsCompleted);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await waiting);

        Assert.True(queue.TryWrite(Frame(1, 1), deferWake: false));
        Assert.True(await queue.WaitToReadAsync(CancellationToken.None));
        Assert.True(queue.TryRead(out InProcessTransport.Frame frame));
        Assert.Equal(1, frame.Bytes.Span[0]);
    }

    [Fact]
    public async Task TheEndWakesAWaitingReaderAfterWhatWasWrittenIsTaken()
    {
        var queue = new FrameQueue();
        ValueTask<bool> waiting = queue.WaitToReadAsync(CancellationToken.None);
        queue.Complete();
        await waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // woken: the next look says there is nothing more
        Assert.False(queue.TryRead(out _));
        Assert.False(await queue.WaitToReadAsync(CancellationToken.None));
        Assert.False(queue.TryWrite(Frame(0, 0), deferWake: false));

        var withFrames = new FrameQueue();
        Assert.True(withFrames.TryWrite(Frame(2, 7), deferWake: false));
        withFrames.Complete();
        Assert.True(await withFrames.WaitToReadAsync(CancellationToken.None)); // what was written before the end is still read
        Assert.True(withFrames.TryRead(out _));
        Assert.False(await withFrames.WaitToReadAsync(CancellationToken.None));
    }
}
