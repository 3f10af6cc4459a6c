namespace IpyRpc.Tests;

/// <summary>Functions that talk while they work.</summary>
public static class Talkers
{
    /// <summary>Prints <paramref name="lines"/> lines, 5 ms apart, and returns how many.</summary>
    /// <param name="lines">How many lines.</param>
    [IpyRpcExport("slow.talk")]
    public static async Task<int> Talk(int lines)
    {
        for (int i = 0; i < lines; i++)
        {
            Console.WriteLine($"line {i} of a talk that goes on for a while, long enough to fill buffers faster");
            await Task.Delay(5);
        }

        return lines;
    }

    /// <summary>How many lines <see cref="Flood"/> has printed so far.</summary>
    public static int Flooded;

    /// <summary>Prints <paramref name="lines"/> lines of a kilobyte as fast as it can, counting them in <see cref="Flooded"/>.</summary>
    /// <param name="lines">How many lines.</param>
    [IpyRpcExport("slow.flood")]
    public static int Flood(int lines)
    {
        string line = new('x', 1023);
        for (int i = 0; i < lines; i++)
        {
            Console.WriteLine(line);
            Interlocked.Increment(ref Flooded);
        }

        return lines;
    }

    /// <summary>Reports progress <paramref name="reports"/> times, a kilobyte each, as fast as it can, counting them in <see cref="Flooded"/>.</summary>
    /// <param name="reports">How many reports.</param>
    /// <param name="progress">Where they go.</param>
    [IpyRpcExport("slow.flood_progress")]
    public static int FloodProgress(int reports, IProgress<string> progress)
    {
        string report = new('x', 1024);
        for (int i = 0; i < reports; i++)
        {
            progress.Report(report);
            Interlocked.Increment(ref Flooded);
        }

        return reports;
    }

    /// <summary>
    /// Waits until <see cref="Flooded"/> has held still for two seconds and returns it (null if it never did within a
    /// minute). Still for two seconds, not one pause: on a loaded machine the buffers between a function and a reader
    /// that stopped can go on draining after half a second without a step (CI once saw 354 hold for 500 ms and then
    /// reach 966).
    /// </summary>
    public static async Task<int?> FloodStalledAsync()
    {
        int now = Volatile.Read(ref Flooded), still = 0;
        for (int i = 0; i < 120 && still < 4; i++)
        {
            await Task.Delay(500);
            int next = Volatile.Read(ref Flooded);
            still = next == now ? still + 1 : 0;
            now = next;
        }

        return still == 4 ? now : null;
    }
}
