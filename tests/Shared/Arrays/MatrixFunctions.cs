using IpyRpc;

namespace IpyRpc.Tests;

/// <summary>Functions over rectangular numeric arrays, for the ndarray tests.</summary>
public static class MatrixFunctions
{
    /// <summary>The transpose of a matrix.</summary>
    /// <param name="m">The matrix.</param>
    [IpyRpcExport("nd.transpose")]
    public static double[,] Transpose(double[,] m)
    {
        var t = new double[m.GetLength(1), m.GetLength(0)];
        for (int i = 0; i < m.GetLength(0); i++)
        {
            for (int j = 0; j < m.GetLength(1); j++) t[j, i] = m[i, j];
        }

        return t;
    }

    /// <summary>A cube's shape and the sum of its elements.</summary>
    /// <param name="cube">The cube.</param>
    [IpyRpcExport("nd.describe")]
    public static string Describe(int[,,] cube)
    {
        long sum = 0;
        foreach (int v in cube) sum += v;
        return $"{cube.GetLength(0)}x{cube.GetLength(1)}x{cube.GetLength(2)} sum {sum}";
    }

    /// <summary>The sum of as many numbers as are given.</summary>
    /// <param name="values">The numbers.</param>
    [IpyRpcExport("nd.sum_all")]
    public static double SumAll(params double[] values) => values.Sum();

    /// <summary>Counts doubled, keyed by integers, each key shifted by ten.</summary>
    /// <param name="counts">Counts by number.</param>
    [IpyRpcExport("nd.histogram")]
    public static Dictionary<int, long> Histogram(Dictionary<int, long> counts) => counts.ToDictionary(c => c.Key + 10, c => c.Value * 2);

    /// <summary>Twice a 128-bit integer.</summary>
    /// <param name="n">The integer.</param>
    [IpyRpcExport("nd.twice")]
    public static Int128 Twice(Int128 n) => n * 2;

    /// <summary>The days from one on, one after another.</summary>
    /// <param name="from">The first day.</param>
    /// <param name="count">How many.</param>
    [IpyRpcExport("nd.days")]
    public static async IAsyncEnumerable<DateOnly> Days(DateOnly from, int count)
    {
        for (int i = 0; i < count; i++)
        {
            await Task.Yield();
            yield return from.AddDays(i);
        }
    }

    /// <summary>What a peer's dates, times, durations, ids and prices arrived as, and the day after.</summary>
    /// <param name="day">A day.</param>
    /// <param name="at">A time of day.</param>
    /// <param name="stamp">A date and time with its offset.</param>
    /// <param name="step">A duration.</param>
    /// <param name="id">An id.</param>
    /// <param name="price">A price.</param>
    [IpyRpcExport("nd.when")]
    public static (string Read, DateOnly Next, TimeOnly Later, DateTime Utc, decimal Doubled, TimeSpan Longer, Dictionary<DateOnly, decimal> ByDay) When(
        DateOnly day, TimeOnly at, DateTimeOffset stamp, TimeSpan step, Guid id, decimal price)
        => ($"{day:yyyy-MM-dd} {at:HH:mm:ss.fff} {stamp:yyyy-MM-ddTHH:mm:sszzz} {step.TotalMinutes} {id.ToString()[..8]} {price}", day.AddDays(1), at.AddMinutes(30),
            stamp.UtcDateTime, price * 2, step + TimeSpan.FromDays(1), new() { [day] = price });
}
