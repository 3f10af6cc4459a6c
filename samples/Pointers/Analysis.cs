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
}
