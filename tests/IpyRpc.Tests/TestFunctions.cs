using IpyRpc;

namespace IpyRpc.Tests;

public enum Color { Red, Green, Blue }

/// <summary>A point in the plane.</summary>
public sealed record Point(double X, double Y);

public sealed class Box
{
    public string Label { get; set; } = "";
    public int[] Sizes { get; set; } = [];
    public Point? Corner { get; init; }
    public Dictionary<string, double> Weights { get; set; } = [];
}

public struct Pixel
{
    public int R;
    public int G;
    public int B;
}

public sealed record Node(string Name, List<Node> Children);

public sealed record Shapes(
    bool Flag, byte U8, sbyte I8, short I16, ushort U16, int I32, uint U32, long I64, ulong U64,
    float F32, double F64, decimal Money, char Letter, string Text, byte[] Bytes, Color Color,
    int? MaybeInt, double[] Samples, List<string> Names, IReadOnlyList<Point> Points,
    Dictionary<string, int> Counts, (int Count, string Label) Pair, Guid Id, DateTime When,
    DateTimeOffset WhenWithOffset, TimeSpan Duration, Pixel Pixel, Box Box, Node Tree);

/// <summary>Functions that exercise every shape the generator supports.</summary>
public static class ShapeFunctions
{
    /// <summary>Adds two integers.</summary>
    /// <param name="a">The first addend.</param>
    /// <param name="b">The second addend.</param>
    /// <returns>The sum.</returns>
    [IpyRpcExport("add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Joins texts with a separator.</summary>
    /// <param name="separator">Goes between them.</param>
    /// <param name="parts">The texts, as many as are given.</param>
    [IpyRpcExport("join")]
    public static string Join(string separator, params string[] parts) => parts is null ? "(null)" : $"{parts.Length}:{string.Join(separator, parts)}";

    /// <summary>The sum of as many numbers as are given.</summary>
    /// <param name="values">The numbers.</param>
    [IpyRpcExport("sum_of")]
    public static double SumOf(params double[] values) => values.Sum();

    /// <summary>Scales a value; the factor is optional.</summary>
    /// <param name="value">What to scale.</param>
    /// <param name="factor">By how much.</param>
    [IpyRpcExport("scale")]
    public static double Scale(double value, double factor = 2.0) => value * factor;

    /// <summary>Greets someone, in a given style.</summary>
    /// <param name="name">Who.</param>
    /// <param name="color">A style.</param>
    /// <param name="suffix">Ends the greeting.</param>
    [IpyRpcExport("greet")]
    public static string Greet(string name, Color color = Color.Green, string? suffix = null) => $"hello {name} in {color}{suffix}";

    /// <summary>Returns the record it was given, so every member makes a round trip.</summary>
    /// <param name="shapes">A value with a member of every supported type.</param>
    [IpyRpcExport("echo_shapes")]
    public static Shapes EchoShapes(Shapes shapes) => shapes;

    /// <summary>Sums an array of doubles.</summary>
    [IpyRpcExport("sum")]
    public static double Sum(double[] values) => values.Sum();

    /// <summary>Reverses bytes.</summary>
    [IpyRpcExport("reverse_bytes")]
    public static byte[] ReverseBytes(byte[] data) => [.. data.Reverse()];

    /// <summary>Counts nodes of a tree.</summary>
    [IpyRpcExport("tree.count")]
    public static int CountNodes(Node root) => 1 + root.Children.Sum(CountNodes);

    /// <summary>Returns nothing.</summary>
    [IpyRpcExport("nothing")]
    public static void Nothing() { }

    /// <summary>Awaits, then returns nothing.</summary>
    [IpyRpcExport("nothing_async")]
    public static async Task NothingAsync() => await Task.Yield();

    /// <summary>Makes a list asynchronously.</summary>
    [IpyRpcExport("range")]
    public static async Task<List<int>> RangeAsync(int count)
    {
        await Task.Yield();
        return [.. Enumerable.Range(0, count)];
    }

    /// <summary>Makes a point as a ValueTask.</summary>
    [IpyRpcExport("origin")]
    public static ValueTask<Point> Origin() => new(new Point(0, 0));

    /// <summary>A value task without a result.</summary>
    [IpyRpcExport("tick")]
    public static ValueTask Tick() => default;

    /// <summary>Returns a nullable that may be null.</summary>
    [IpyRpcExport("maybe")]
    public static int? Maybe(bool give) => give ? 42 : null;

    /// <summary>Takes a tuple, returns a swapped one.</summary>
    [IpyRpcExport("swap")]
    public static (string, int) Swap((int, string) pair) => (pair.Item2, pair.Item1);

    /// <summary>Reads a dictionary.</summary>
    [IpyRpcExport("total")]
    public static double Total(IReadOnlyDictionary<string, double> weights) => weights.Values.Sum();

    /// <summary>Plain data through <c>object</c>.</summary>
    [IpyRpcExport("describe_value")]
    public static string DescribeValue(object? value) => value switch
    {
        null => "null",
        long l => "long " + l,
        double d => "double " + d,
        string s => "string " + s,
        object?[] a => "array of " + a.Length,
        Dictionary<string, object?> m => "map of " + m.Count,
        _ => value.GetType().Name,
    };
}
