using IpyRpc;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.Calls;

/// <summary>Large parts travel in pooled arrays: given back once, by the last reader, and never while anyone still reads them.</summary>
public sealed class PooledPartsTests
{
    [Fact]
    public void TheArraysGoBackOnceWhenTheLastReaderLetsGo()
    {
        var pooled = new PooledParts();
        byte[] array = pooled.Rent(200_000);
        Assert.True(array.Length >= 200_000);
        Assert.True(pooled.TryAcquire()); // a second reader
        long before = PooledParts.ReturnedArrays;
        pooled.Release();
        Assert.True(pooled.TryAcquire()); // the second reader still holds it: not gone back (the count is the process's, so other tests move it)
        pooled.Release();
        pooled.Release();
        Assert.True(PooledParts.ReturnedArrays >= before + 1);
        Assert.False(pooled.TryAcquire()); // gone back: nobody may start reading now
        pooled.Release(); // one release too many changes nothing
        Assert.False(pooled.TryAcquire());
    }

    [Fact]
    public void OnlyLargePartsArePooled()
    {
        Assert.False(PooledParts.ShouldPool(PooledParts.Threshold - 1));
        Assert.True(PooledParts.ShouldPool(PooledParts.Threshold));
        Assert.True(PooledParts.ShouldPool(PooledParts.MaxPooled));
        Assert.True(PooledParts.ShouldPool(PooledParts.MaxPooled + 1L)); // held briefly, not by the shared pool
        Assert.False(PooledParts.ShouldPool(Array.MaxLength + 1L));
        var message = new IpyRpcMessage { Kind = MessageKind.Result, Id = 7, Parts = [new byte[100_000]] };
        ReadOnlyMemory<byte> framed = MessageCodec.EncodeFramed(message, pooling: true, out PooledParts? pool);
        Assert.NotNull(pool);
        IpyRpcMessage back = MessageCodec.DecodeFramed(framed, long.MaxValue, pool);
        Assert.Same(pool, back.Pooled);
        MessageCodec.EncodeFramed(message with { Parts = [new byte[1000]] }, pooling: true, out PooledParts? small);
        Assert.Null(small); // a small message is framed into an array of its own
        Assert.Equal(100_000, back.Body.Length);
        Assert.Equal(MessageCodec.EncodeFramed(message), framed.ToArray()); // the same bytes as the unpooled framing
    }

    [Fact]
    public async Task ArraysAboveTheSharedPoolsSizeAreReusedRightAwayAndLetGoOfSoonAfter()
    {
        // A store of its own: other tests' large arrays, given back to the process's store meanwhile, are not taken here.
        var store = new PooledParts.LargeArrays();
        int length = PooledParts.MaxPooled + 12_345;
        var first = new PooledParts(store);
        byte[] array = first.Rent(length);
        Assert.Equal(length, array.Length); // not a power-of-two bucket: exactly what was asked
        first.Release();
        Assert.Equal(length, store.HeldBytes);

        var second = new PooledParts(store);
        Assert.Same(array, second.Rent(length - 1000)); // the next call of about that size writes into the same memory
        var third = new PooledParts(store);
        Assert.NotSame(array, third.Rent(length)); // while the second holds it, a third gets another
        Assert.NotSame(array, new PooledParts(store).Rent(3 * length)); // much larger asks for its own
        second.Release();
        third.Release();
        Assert.Equal(2L * length, store.HeldBytes);

        // Held for about a second after its last use, then let go: nothing is kept for good.
        DateTime giveUp = DateTime.UtcNow.AddSeconds(10);
        while (store.HeldBytes > 0)
        {
            Assert.True(DateTime.UtcNow < giveUp, $"{store.HeldBytes} bytes of large arrays are still held");
            await Task.Delay(50);
        }

        Assert.NotSame(array, new PooledParts(store).Rent(length));
    }

    [Fact]
    public async Task AFunctionLeftRunningPastItsDeadlineKeepsItsArgumentsUntilItReturns()
    {
        // The caller hears of the timeout at once and the job ends (the queue lets go of the arguments), but a
        // synchronous function that ignores its token runs on: the executor's own hold keeps its arguments' arrays.
        await using var server = new IpyRpcServer();
        server.Register(typeof(PooledArgumentFunctions));
        string gate = Gates.NewName("pooled-hold");
        (JobRequest request, PooledParts pool) = Request(gate, DateTimeOffset.UtcNow.AddMilliseconds(300));

        JobOutcome outcome = await server.Registry.ExecuteAsync(request, new NoOutput(), CancellationToken.None);
        Assert.Equal(JobState.TimedOut, outcome.State);
        pool.Release(); // the queue's hold, given back as the job ends
        await Gates.WaitAsync(gate + ".started");
        Assert.True(Held(pool), "the arrays went back while the function was still running");

        Gates.Open(gate);
        for (int i = 0; i < 400 && Held(pool); i++) await Task.Delay(25);
        Assert.False(Held(pool), "the arrays never went back after the function returned");
    }

    [Fact]
    public async Task AJobWhoseArgumentsWentBackIsNotRun()
    {
        // A job cancelled while queued ends, and the queue gives its arguments back; a worker that had already taken
        // it must not run the function on arrays that may now hold another call's bytes.
        await using var server = new IpyRpcServer();
        server.Register(typeof(PooledArgumentFunctions));
        string gate = Gates.NewName("pooled-gone");
        (JobRequest request, PooledParts pool) = Request(gate, null);
        pool.Release();

        JobOutcome outcome = await server.Registry.ExecuteAsync(request, new NoOutput(), CancellationToken.None);
        Assert.Equal(JobState.Cancelled, outcome.State);
        Assert.False(Gates.Get(gate + ".started").Task.IsCompleted, "the function ran");
    }

    private static (JobRequest Request, PooledParts Pool) Request(string gate, DateTimeOffset? deadline)
    {
        ReadOnlyMemory<byte> arguments = new IpyRpcArguments().Add(gate, Formatting.Formatters.String).Add(new byte[200_000], Formatting.Formatters.ByteArray)
            .Encode(Serialization.MessagePack, pooling: true, out PooledParts? pool);
        Assert.NotNull(pool);
        return (new JobRequest { Function = "pooled.hold", Arguments = arguments, ArgumentsPool = pool, Deadline = deadline }, pool);
    }

    // Whether someone still holds the arrays (a reference taken and given straight back).
    private static bool Held(PooledParts pool)
    {
        if (!pool.TryAcquire()) return false;
        pool.Release();
        return true;
    }

    private sealed class NoOutput : IJobOutput
    {
        public void Write(OutputStream stream, string text)
        {
        }
    }

    [Fact]
    public async Task ASubmittedJobsLargeResultStaysIntactWhileOtherCallsChurnThePool()
    {
        // A submitted job's result is kept for whoever attaches: its pooled array must not go back when the result is
        // first delivered, or the calls after it would rent it, and the next attach would read their bytes.
        await using InProcess p = await InProcess.StartAsync();
        byte[] data = new byte[300_000];
        new Random(7).NextBytes(data);
        IpyRpcJob<byte[]> job = await p.Client.SubmitAsync<byte[]>("reverse_bytes", data);
        byte[] expected = [.. data.Reverse()];
        Assert.Equal(expected, await job);
        await LargeEchoes.RunAsync(async (d, _) =>
        {
            byte[]? back = await p.Client.CallAsync<byte[]>("reverse_bytes", d);
            if (back is not null) Array.Reverse(back);
            return back;
        }, tasks: 3, callsEach: 10, seed: 50, arraysPerCall: 4);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(expected, await (await p.Client.AttachAsync<byte[]>(job.Id)).WaitAsync());
        }

        JobInfo? info = await p.Server.Queue.GetAsync(job.Id);
        Assert.NotNull(info?.Outcome);
        Assert.Equal(expected, info.Outcome.Result.ToArray()[5..]); // after its MessagePack header (bin 32)
        Assert.Null(info.Outcome.ResultPool); // handed out as a copy: the caller may keep it
    }

    [Fact]
    public async Task ManyLargeCallsAtOnceComeBackIntactAndTheirArraysGoBack()
    {
        // Each call's arguments are framed into pooled arrays on the way in and its result on the way out. An array
        // given back while still read would be rented by another call and overwritten: some result would differ.
        await using InProcess p = await InProcess.StartAsync();
        // Four arrays a call: the client's arguments (once framed), the server's copy (once the job ended), the
        // server's encoded result (once framed and released by the queue), the reply (once decoded).
        await LargeEchoes.RunAsync(async (data, i) =>
        {
            // Some with a deadline: a synchronous function then runs on a thread of its own, holding its arguments there.
            CallOptions? options = i % 3 == 0 ? new CallOptions { Timeout = TimeSpan.FromMinutes(1) } : null;
            byte[]? back = await p.Client.InvokeAsync("reverse_bytes", new IpyRpcArguments().Add(data, Formatting.Formatters.ByteArray), Formatting.Formatters.ByteArray, options);
            if (back is not null) Array.Reverse(back);
            return back;
        }, tasks: 6, callsEach: 25, seed: 0, arraysPerCall: 4);
    }
}

/// <summary>A synchronous function that blocks until its gate opens, ignoring its token.</summary>
public static class PooledArgumentFunctions
{
    /// <summary>Waits for <paramref name="gate"/>, then returns the length of <paramref name="data"/>.</summary>
    /// <param name="gate">The gate to wait for.</param>
    /// <param name="data">Large enough to travel in a pooled array.</param>
    [IpyRpcExport("pooled.hold")]
    public static int Hold(string gate, byte[] data)
    {
        Gates.Open(gate + ".started");
        Gates.Get(gate).Task.Wait(TimeSpan.FromSeconds(30));
        return data.Length;
    }
}
