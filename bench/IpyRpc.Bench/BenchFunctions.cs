using IpyRpc;

namespace IpyRpc.Bench;

/// <summary>A small record of nine ints, for the serialization benchmarks.</summary>
public sealed record Nine(int A, int B, int C, int D, int E, int F, int G, int H, int I);

/// <summary>What the benchmarks call.</summary>
public static class BenchFunctions
{
    /// <summary>Adds two integers: the small call.</summary>
    [IpyRpcExport("add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Adds two integers on the thread that received the call (<see cref="FunctionOptions.Inline"/>, set by <see cref="Configure"/>).</summary>
    [IpyRpcExport("add_inline")]
    public static int AddInline(int a, int b) => a + b;

    /// <summary>The benchmark servers' config: <c>add_inline</c> runs inline, everything else on the queue's workers.</summary>
    public static IpyRpcServer Configure(IpyRpcServer server) => server.Register(typeof(BenchFunctions)).Config(new GlobConfig
    {
        ["add_inline"] = new FunctionOptions { Inline = true },
    });

    /// <summary>Adds two integers and prints a line on the way: a call whose record keeps its output (not folded).</summary>
    [IpyRpcExport("add_print")]
    public static int AddPrint(int a, int b)
    {
        Console.WriteLine("adding");
        return a + b;
    }

    /// <summary>Returns the bytes it was given.</summary>
    [IpyRpcExport("echo_bytes")]
    public static byte[] EchoBytes(byte[] data) => data;

    /// <summary>Returns the doubles it was given.</summary>
    [IpyRpcExport("echo_doubles")]
    public static double[] EchoDoubles(double[] data) => data;

    /// <summary>A rows × cols matrix whose element [i, j] is i + j: a large result, for the pointer scenarios.</summary>
    [IpyRpcExport("matrix")]
    public static double[,] Matrix(int rows, int cols)
    {
        var m = new double[rows, cols];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) m[i, j] = i + j;
        }

        return m;
    }

    /// <summary>The first rows of a matrix.</summary>
    [IpyRpcExport("matrix_head")]
    public static double[,] MatrixHead(double[,] m, int rows)
    {
        int n = Math.Min(rows, m.GetLength(0)), cols = m.GetLength(1);
        var head = new double[n, cols];
        Array.Copy(m, head, (long)n * cols);
        return head;
    }

    /// <summary>The sum of a matrix's elements.</summary>
    [IpyRpcExport("matrix_sum")]
    public static double MatrixSum(double[,] m)
    {
        double sum = 0;
        foreach (double v in m) sum += v;
        return sum;
    }

    /// <summary>Returns the record it was given.</summary>
    [IpyRpcExport("echo_nine")]
    public static Nine EchoNine(Nine value) => value;
}
