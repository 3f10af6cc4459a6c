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

    /// <summary>Returns the bytes it was given.</summary>
    [IpyRpcExport("echo_bytes")]
    public static byte[] EchoBytes(byte[] data) => data;

    /// <summary>Returns the doubles it was given.</summary>
    [IpyRpcExport("echo_doubles")]
    public static double[] EchoDoubles(double[] data) => data;

    /// <summary>Returns the record it was given.</summary>
    [IpyRpcExport("echo_nine")]
    public static Nine EchoNine(Nine value) => value;
}
