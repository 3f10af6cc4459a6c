using IpyRpc.Protocol;

namespace IpyRpc.Tests;

/// <summary>
/// Many distinct large payloads echoed at once, each checked byte for byte. Large parts travel in pooled
/// arrays: one given back while still sent or read is rented by another call and overwritten, and some
/// echo comes back different.
/// </summary>
public static class LargeEchoes
{
    /// <summary>
    /// Runs <paramref name="tasks"/> tasks of <paramref name="callsEach"/> echoes of 70–400 KB (or
    /// <paramref name="minBytes"/> to <paramref name="maxBytes"/>), then waits until at least
    /// <paramref name="arraysPerCall"/> arrays a call have gone back to the pool (the last call's may still be on their
    /// way: a server gives its result back once written, which can be after the caller has read it).
    /// </summary>
    public static async Task RunAsync(Func<byte[], int, Task<byte[]?>> echo, int tasks, int callsEach, int seed, int arraysPerCall, int minBytes = 70_000, int maxBytes = 400_000)
    {
        long before = PooledParts.ReturnedArrays;
        await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            var random = new Random(seed + t);
            for (int i = 0; i < callsEach; i++)
            {
                byte[] data = new byte[random.Next(minBytes, maxBytes)];
                random.NextBytes(data);
                byte[]? back = await echo(data, i);
                Assert.True(back is not null && data.AsSpan().SequenceEqual(back), $"call {i} of task {t} came back different");
            }
        })));

        long expected = (long)arraysPerCall * tasks * callsEach;
        for (int i = 0; i < 200 && PooledParts.ReturnedArrays - before < expected; i++) await Task.Delay(25);
        long returned = PooledParts.ReturnedArrays - before;
        Assert.True(returned >= expected, $"only {returned} arrays went back to the pool for {tasks * callsEach} calls ({arraysPerCall} a call expected)");
    }
}
