using System.Diagnostics;

namespace IpyRpc.Bench;

/// <summary>Latency percentiles and throughput, measured the same way for every system.</summary>
internal static class Measure
{
    /// <summary>Calls one at a time; returns the median and 99th percentile in microseconds.</summary>
    public static async Task<(double P50, double P99)> LatencyAsync(Func<Task> call, int warmup, int count)
    {
        for (int i = 0; i < warmup; i++) await call();
        return Percentiles(await SamplesAsync(call, count));
    }

    /// <summary>Times <paramref name="count"/> calls made one at a time.</summary>
    public static async Task<long[]> SamplesAsync(Func<Task> call, int count)
    {
        long[] ticks = new long[count];
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await call();
            ticks[i] = Stopwatch.GetTimestamp() - start;
        }

        return ticks;
    }

    /// <summary>The median and 99th percentile of samples, in microseconds.</summary>
    public static (double P50, double P99) Percentiles(long[] ticks)
    {
        Array.Sort(ticks);
        return (Us(ticks[ticks.Length / 2]), Us(ticks[Math.Min(ticks.Length - 1, (int)Math.Ceiling(ticks.Length * 0.99) - 1)]));
    }

    /// <summary>Keeps <paramref name="inFlight"/> calls running until <paramref name="total"/> have completed; returns calls per second.</summary>
    public static async Task<double> ThroughputAsync(Func<Task> call, int inFlight, int total)
    {
        int remaining = total;
        long start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async _ =>
        {
            while (Interlocked.Decrement(ref remaining) >= 0)
            {
                await call();
            }
        }));
        return total / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    public static double Us(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;
}
