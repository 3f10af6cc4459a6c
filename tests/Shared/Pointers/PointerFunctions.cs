using System.Numerics.Tensors;
using IpyRpc;

namespace IpyRpc.Tests.Pointers;

/// <summary>A matrix with a label.</summary>
/// <param name="Label">Its label.</param>
/// <param name="Matrix">The matrix.</param>
public sealed record Labelled(string Label, double[,] Matrix);

/// <summary>Functions whose results are worth keeping where they were computed.</summary>
public static class PointerFunctions
{
    /// <summary>The last matrix made in this process, to tell whether an argument is that very object (no bytes moved) or a copy.</summary>
    public static double[,]? LastMade { get; private set; }

    /// <summary>A rows × cols matrix whose element [i, j] is i * cols + j.</summary>
    /// <param name="rows">Rows.</param>
    /// <param name="cols">Columns.</param>
    [IpyRpcExport("ptr.matrix")]
    public static double[,] Matrix(int rows, int cols)
    {
        var m = new double[rows, cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) m[i, j] = (i * cols) + j;
        }

        LastMade = m;
        return m;
    }

    /// <summary>The first rows of a matrix.</summary>
    /// <param name="m">The matrix.</param>
    /// <param name="rows">How many rows.</param>
    [IpyRpcExport("ptr.head")]
    public static double[,] Head(double[,] m, int rows)
    {
        int n = Math.Min(rows, m.GetLength(0)), cols = m.GetLength(1);
        var head = new double[n, cols];
        Array.Copy(m, head, n * cols);
        return head;
    }

    /// <summary>The sums of several matrices' elements, by name; given inline, by pointer, or both.</summary>
    /// <param name="named">Matrices by name.</param>
    [IpyRpcExport("ptr.sums")]
    public static Dictionary<string, double> Sums(Dictionary<string, List<double[,]>> named)
        => named.ToDictionary(n => n.Key, n => n.Value.Sum(Sum));

    /// <summary>The value types of the pointers given: a function that takes pointers themselves, which are not resolved.</summary>
    /// <param name="pointers">The pointers.</param>
    [IpyRpcExport("ptr.types")]
    public static string Types(List<RemotePointer> pointers) => string.Join(",", pointers.Select(p => p.ValueType));

    /// <summary>A labelled matrix's label and sum: a record with a matrix member (which may be a pointer).</summary>
    /// <param name="item">The labelled matrix.</param>
    [IpyRpcExport("ptr.labelled")]
    public static string LabelledSum(Labelled item) => $"{item.Label} {Sum(item.Matrix)}";

    /// <summary>The sum of rows [start, stop) of a matrix kept elsewhere: only those rows are fetched.</summary>
    /// <param name="m">The matrix's pointer.</param>
    /// <param name="start">The first row.</param>
    /// <param name="stop">The row after the last.</param>
    /// <param name="pointers">Filled by the call.</param>
    [IpyRpcExport("ptr.rowsum")]
    public static async Task<double> RowSum(RemotePointer<double[,]> m, long start, long stop, IpyRpcPointers pointers)
        => Sum(await pointers.FetchAsync(m, start, stop));

    /// <summary>A matrix split at a row, both parts kept where they were made: two pointers.</summary>
    /// <param name="m">The matrix.</param>
    /// <param name="at">The first row of the second part.</param>
    /// <param name="pointers">Filled by the call.</param>
    [IpyRpcExport("ptr.split")]
    public static List<RemotePointer<double[,]>> Split(double[,] m, int at, IpyRpcPointers pointers)
    {
        int rows = m.GetLength(0), cols = m.GetLength(1);
        var head = new double[at, cols];
        var tail = new double[rows - at, cols];
        Array.Copy(m, head, at * cols);
        Array.Copy(m, at * cols, tail, 0, (rows - at) * cols);
        return [pointers.Keep(head), pointers.Keep(tail, TimeSpan.FromMinutes(5))];
    }

    /// <summary>The sum of a matrix's elements.</summary>
    /// <param name="m">The matrix.</param>
    [IpyRpcExport("ptr.sum")]
    public static double Sum(double[,] m)
    {
        double sum = 0;
        foreach (double v in m) sum += v;
        return sum;
    }

    /// <summary>Whether the argument is the very matrix this process made last (a pointer resolved on its holder), with the process id.</summary>
    /// <param name="m">The matrix.</param>
    [IpyRpcExport("ptr.is_last_made")]
    public static string IsLastMade(double[,] m) => $"{ReferenceEquals(m, LastMade)} {Environment.ProcessId}";

    /// <summary>The integers 0 … n-1.</summary>
    /// <param name="n">How many.</param>
    [IpyRpcExport("ptr.range")]
    public static List<int> Range(int n) => [.. Enumerable.Range(0, n)];

    /// <summary>n bytes, byte i being i mod 251.</summary>
    /// <param name="n">How many.</param>
    [IpyRpcExport("ptr.bytes")]
    public static byte[] Bytes(int n) => [.. Enumerable.Range(0, n).Select(i => (byte)(i % 251))];

    /// <summary>A text, which has no rows.</summary>
    [IpyRpcExport("ptr.text")]
    public static string Text() => "no rows here";

    /// <summary>The number of items in a list.</summary>
    /// <param name="items">The list.</param>
    [IpyRpcExport("ptr.count")]
    public static int Count(List<int> items) => items.Count;

    /// <summary>A data frame of daily prices: index "day" (dates), columns price, volume, ticker, up.</summary>
    /// <param name="rows">How many days.</param>
    [IpyRpcExport("ptr.frame")]
    public static DataFrame Frame(int rows)
    {
        DateTime[] days = [.. Enumerable.Range(0, rows).Select(i => new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddDays(i))];
        double[] price = [.. Enumerable.Range(0, rows).Select(i => 100 + (i * 0.5))];
        long[] volume = [.. Enumerable.Range(0, rows).Select(i => (long)i * 1000)];
        string?[] ticker = [.. Enumerable.Range(0, rows).Select(i => i % 7 == 3 ? null : "T" + (i % 3))];
        bool[] up = [.. Enumerable.Range(0, rows).Select(i => i % 2 == 0)];
        return new DataFrame(DataFrameColumn.Of("day", days),
            DataFrameColumn.Of("price", price), DataFrameColumn.Of("volume", volume), DataFrameColumn.Of("ticker", ticker), DataFrameColumn.Of("up", up));
    }

    /// <summary>The sum of a data frame's price column and its row count.</summary>
    /// <param name="frame">The data frame.</param>
    [IpyRpcExport("ptr.frame_total")]
    public static string FrameTotal(DataFrame frame) => $"{frame.RowCount} rows, price total {frame.Column<double>("price").Sum()}";

    /// <summary>A rows × 2 × 3 tensor whose elements count up from 0.</summary>
    /// <param name="rows">The first dimension.</param>
    [IpyRpcExport("ptr.tensor")]
    public static Tensor<double> MakeTensor(int rows) => Tensor.Create([.. Enumerable.Range(0, rows * 6).Select(i => (double)i)], [rows, 2, 3]);

    /// <summary>The sum of a tensor's elements and its shape.</summary>
    /// <param name="t">The tensor.</param>
    [IpyRpcExport("ptr.tensor_sum")]
    public static string TensorSum(Tensor<double> t) => $"{string.Join("x", t.Lengths.ToArray())} sum {Tensor.Sum<double>(t)}";

    /// <summary>Where the process that runs it is: its id.</summary>
    [IpyRpcExport("ptr.pid")]
    public static int Pid() => Environment.ProcessId;
}
