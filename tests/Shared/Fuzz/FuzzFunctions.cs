namespace IpyRpc.Tests.Fuzz;

/// <summary>Quick functions for fuzzing: nothing a fuzzed call can make wait.</summary>
public static class FuzzFunctions
{
    /// <summary>Adds.</summary>
    [IpyRpcExport("fuzz.add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Echoes text.</summary>
    [IpyRpcExport("fuzz.echo")]
    public static string Echo(string text) => text;

    /// <summary>Sums numbers, printing the count.</summary>
    [IpyRpcExport("fuzz.sum")]
    public static double Sum(double[] values, double scale = 1)
    {
        Console.WriteLine($"{values.Length} values");
        return values.Sum() * scale;
    }

    /// <summary>Joins texts: a params array gathers the positional arguments past the separator.</summary>
    [IpyRpcExport("fuzz.join")]
    public static string Join(string separator, params string[] parts) => string.Join(separator, parts ?? []);

    /// <summary>Describes framework values: text formats, a wide integer, any JSON value, an immutable array.</summary>
    [IpyRpcExport("fuzz.stamp")]
    public static string Stamp(DateOnly day, TimeOnly at, Int128 n, System.Text.Json.JsonElement value, Uri link, System.Collections.Immutable.ImmutableArray<int> xs)
        => $"{day:O} {at:O} {n} {value.ValueKind} {link.OriginalString} {xs.Length}";

    /// <summary>Throws.</summary>
    [IpyRpcExport("fuzz.fail")]
    public static void Fail(string message) => throw new InvalidOperationException(message);
}
