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

/// <summary>
/// Wake-ups held by the thread that wrote (a lone call's request or reply on a lent thread): performed by that thread
/// when its lent run ends, at once by a later write, or by the watch when the thread blocks instead.
/// </summary>
public sealed class DeferredWakesTests
{
    private static InProcessTransport.Frame Frame(byte b) => new(new[] { b }, null);

    [Fact]
    public void AHeldWakeUpIsPerformedOnTheWritingThreadWhenItsRunEnds()
    {
        var queue = new FrameQueue();
        ValueTask<bool> waiting = queue.WaitToReadAsync(CancellationToken.None);
        int thread = Environment.CurrentManagedThreadId, wokenOn = 0;
        Task<bool> resumed = waiting.AsTask().ContinueWith(t => { wokenOn = Environment.CurrentManagedThreadId; return t.Result; }, TaskContinuationOptions.ExecuteSynchronously);

        DeferredWakes run = DeferredWakes.Enter();
        Assert.True(queue.TryWrite(Frame(1), deferWake: true));
        Assert.False(resumed.IsCompleted); // held, not performed: the reader still waits
        run.Exit();

        Assert.True(resumed.IsCompleted); // performed by Exit, on this thread, before it returned
        Assert.Equal(thread, wokenOn);
        Assert.True(queue.TryRead(out _));
    }

    [Fact]
    public async Task AHeldWakeUpThatALaterWriteTakesIsPerformedOnce()
    {
        var queue = new FrameQueue();
        Task<bool> woken = queue.WaitToReadAsync(CancellationToken.None).AsTask();
        ValueTask<bool> next = default;
        await Task.Run(() =>
        {
            DeferredWakes run = DeferredWakes.Enter(); // a run and its end on one thread
            try
            {
                Assert.True(queue.TryWrite(Frame(1), deferWake: true));
                // Another write means the call is no longer alone: it wakes the reader (or the watch does, if it comes first).
                Task.Run(() => queue.TryWrite(Frame(2), deferWake: false)).Wait();
                Assert.True(woken.Wait(TimeSpan.FromSeconds(10)), "the reader was not woken while its wake-up was held");
                Assert.True(queue.TryRead(out InProcessTransport.Frame first));
                Assert.True(queue.TryRead(out InProcessTransport.Frame second));
                Assert.Equal([1, 2], [first.Bytes.Span[0], second.Bytes.Span[0]]);
                next = queue.WaitToReadAsync(CancellationToken.None); // the reader waits again before the run ends
            }
            finally
            {
                run.Exit();
            }
        });

        // The run's end had the wake-up the second write took: performed again, it would end this wait with nothing there.
        Assert.False(next.IsCompleted);
        Assert.True(queue.TryWrite(Frame(3), deferWake: false));
        Assert.True(await next.AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(queue.TryRead(out InProcessTransport.Frame third));
        Assert.Equal(3, third.Bytes.Span[0]);
    }

    [Fact]
    public async Task AThreadThatBlocksWhileHoldingAWakeUpHasItPerformedByTheWatch()
    {
        var queue = new FrameQueue();
        Task<bool> woken = queue.WaitToReadAsync(CancellationToken.None).AsTask();
        await Task.Run(() =>
        {
            DeferredWakes run = DeferredWakes.Enter();
            try
            {
                Assert.True(queue.TryWrite(Frame(1), deferWake: true));
                // This thread now waits for the reader it holds the wake-up of, as a caller waiting synchronously for
                // its reply does: only the watch can wake it.
                Assert.True(woken.Wait(TimeSpan.FromSeconds(10)), "the watch never performed the held wake-up");
            }
            finally
            {
                run.Exit();
            }
        });
    }
}
