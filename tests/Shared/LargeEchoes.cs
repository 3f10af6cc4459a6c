using IpyRpc.Protocol;

namespace IpyRpc.Tests;

/// <summary>
/// Many distinct large payloads echoed at once, each checked byte for byte. Large parts travel in pooled
/// arrays: one given back while still sent or read is rented by another call and overwritten, and some
/// echo comes back different.
/// </summary>
public static class LargeEchoes
{
    /// <summary>Runs <paramref name="tasks"/> tasks of <paramref name="callsEach"/> echoes of 70–400 KB; returns how many arrays went back to the pool meanwhile.</summary>
    public static async Task<long> RunAsync(Func<byte[], int, Task<byte[]?>> echo, int tasks, int callsEach, int seed)
    {
        long before = PooledParts.ReturnedArrays;
        await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            var random = new Random(seed + t);
            for (int i = 0; i < callsEach; i++)
            {
                byte[] data = new byte[random.Next(70_000, 400_000)];
                random.NextBytes(data);
                byte[]? back = await echo(data, i);
                Assert.True(back is not null && data.AsSpan().SequenceEqual(back), $"call {i} of task {t} came back different");
            }
        })));
        return PooledParts.ReturnedArrays - before;
    }
}
