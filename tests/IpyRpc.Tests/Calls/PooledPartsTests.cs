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
        Assert.Equal(before, PooledParts.ReturnedArrays); // the second reader still holds it
        Assert.True(pooled.TryAcquire());
        pooled.Release();
        pooled.Release();
        Assert.True(PooledParts.ReturnedArrays >= before + 1);
        Assert.False(pooled.TryAcquire()); // gone back: nobody may start reading now
        pooled.Release(); // one release too many changes nothing
        Assert.False(pooled.TryAcquire());
    }

    [Fact]
    public void OnlyLargePartsUpToALimitArePooled()
    {
        Assert.False(PooledParts.ShouldPool(PooledParts.Threshold - 1));
        Assert.True(PooledParts.ShouldPool(PooledParts.Threshold));
        Assert.True(PooledParts.ShouldPool(PooledParts.MaxPooled));
        Assert.False(PooledParts.ShouldPool(PooledParts.MaxPooled + 1L)); // the pool would keep such arrays for good
        var message = new IpyRpcMessage { Kind = MessageKind.Result, Id = 7, Parts = [new byte[100_000]] };
        var pool = new PooledParts();
        ReadOnlyMemory<byte> framed = MessageCodec.EncodeFramed(message, pool);
        IpyRpcMessage back = MessageCodec.DecodeFramed(framed, long.MaxValue, pool);
        Assert.Same(pool, back.Pooled);
        Assert.Equal(100_000, back.Body.Length);
        Assert.Equal(MessageCodec.EncodeFramed(message), framed.ToArray()); // the same bytes as the unpooled framing
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
        }, tasks: 3, callsEach: 10, seed: 50);
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
        const int Tasks = 6, CallsEach = 25;
        long returned = await LargeEchoes.RunAsync(async (data, i) =>
        {
            // Some with a deadline: a synchronous function then runs on a thread of its own, holding its arguments there.
            CallOptions? options = i % 3 == 0 ? new CallOptions { Timeout = TimeSpan.FromMinutes(1) } : null;
            byte[]? back = await p.Client.InvokeAsync("reverse_bytes", new IpyRpcArguments().Add(data, Formatting.Formatters.ByteArray), Formatting.Formatters.ByteArray, options);
            if (back is not null) Array.Reverse(back);
            return back;
        }, Tasks, CallsEach, seed: 0);

        // Four arrays a call: the client's arguments (once framed), the server's copy (once the job ended), the
        // server's encoded result (once framed and released by the queue), the reply (once decoded).
        Assert.True(returned >= 4L * Tasks * CallsEach, $"only {returned} arrays went back to the pool for {Tasks * CallsEach} calls");
    }
}
