using IpyRpc;

namespace Pointers;

/// <summary>Functions over large arrays: worth computing where they stay.</summary>
public static class Analysis
{
    /// <summary>Simulates random walks: one row per step, one column per walker.</summary>
    /// <param name="steps">How many steps (rows).</param>
    /// <param name="walkers">How many walkers (columns).</param>
    /// <param name="seed">The random seed.</param>
    /// <returns>The positions, steps × walkers.</returns>
    [IpyRpcExport("analysis.simulate")]
    public static double[,] Simulate(int steps, int walkers, int seed = 42)
    {
        var random = new Random(seed);
        var positions = new double[steps, walkers];
        for (int i = 1; i < steps; i++)
        {
            for (int j = 0; j < walkers; j++) positions[i, j] = positions[i - 1, j] + (random.NextDouble() - 0.5);
        }

        Console.WriteLine($"simulated {steps:N0} steps of {walkers} walkers in process {Environment.ProcessId}");
        return positions;
    }

    /// <summary>The mean of each column.</summary>
    /// <param name="data">Rows × columns.</param>
    /// <returns>One mean per column.</returns>
    [IpyRpcExport("analysis.column_means")]
    public static double[] ColumnMeans(double[,] data)
    {
        int rows = data.GetLength(0), cols = data.GetLength(1);
        var means = new double[cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) means[j] += data[i, j];
        }

        for (int j = 0; j < cols; j++) means[j] /= rows;
        Console.WriteLine($"averaged {rows:N0} rows in process {Environment.ProcessId}");
        return means;
    }

    /// <summary>The mean of each column over rows [start, stop) of data kept elsewhere: only those rows are read.</summary>
    /// <param name="data">A pointer to rows × columns.</param>
    /// <param name="start">The first row.</param>
    /// <param name="stop">The row after the last (negative: from the end).</param>
    /// <param name="pointers">Filled by the call: fetches the rows.</param>
    /// <returns>One mean per column.</returns>
    [IpyRpcExport("analysis.window_means")]
    public static async Task<double[]> WindowMeans(RemotePointer<double[,]> data, long start, long stop, IpyRpcPointers pointers)
    {
        double[,] rows = await pointers.FetchAsync(data, start, stop);
        Console.WriteLine($"fetched {rows.GetLength(0):N0} of {data.Length:N0} rows in process {Environment.ProcessId}");
        return ColumnMeans(rows);
    }
}
