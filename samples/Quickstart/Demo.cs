using IpyRpc;

namespace Quickstart;

/// <summary>The functions the quickstart serves.</summary>
public static class Demo
{
    /// <summary>Adds two integers.</summary>
    /// <param name="a">The first addend.</param>
    /// <param name="b">The second addend.</param>
    /// <returns>The sum of <paramref name="a"/> and <paramref name="b"/>.</returns>
    [IpyRpcExport("add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Returns its argument unchanged.</summary>
    /// <param name="value">Any text.</param>
    /// <returns>The same text.</returns>
    [IpyRpcExport("echo")]
    public static string Echo(string value) => value;

    /// <summary>Prints <c>line 1</c> … <c>line N</c> to stdout, one at a time with a short pause.</summary>
    /// <param name="count">How many lines to print.</param>
    /// <param name="cancellationToken">Stops the printing early.</param>
    /// <returns>How many lines were printed.</returns>
    [IpyRpcExport("print_lines")]
    public static async Task<int> PrintLines(int count, CancellationToken cancellationToken)
    {
        for (int i = 1; i <= count; i++)
        {
            Console.WriteLine($"line {i}");
            await Task.Delay(TimeSpan.FromMilliseconds(300), cancellationToken);
        }

        return count;
    }

    /// <summary>Always fails, to show how remote exceptions look on the caller's side.</summary>
    /// <param name="message">The exception's message.</param>
    /// <exception cref="InvalidOperationException">Always, with <paramref name="message"/>.</exception>
    [IpyRpcExport("fail")]
    public static void Fail(string message) => throw new InvalidOperationException(message);

    /// <summary>The mean of some numbers; configured to speak JSON only (the <c>*_json</c> rule).</summary>
    /// <param name="values">The numbers.</param>
    /// <returns>Their arithmetic mean.</returns>
    [IpyRpcExport("mean_json")]
    public static double MeanJson(double[] values) => values.Length == 0 ? double.NaN : values.Average();

    /// <summary>The mean of some numbers; configured for compact MessagePack (the <c>*_binary</c> rule).</summary>
    /// <param name="values">The numbers, sent as one raw block.</param>
    /// <returns>Their arithmetic mean.</returns>
    [IpyRpcExport("mean_binary")]
    public static double MeanBinary(double[] values) => values.Length == 0 ? double.NaN : values.Average();

    /// <summary>Builds the server with the demo's functions and its glob config.</summary>
    public static IpyRpcServer CreateServer(IpyRpcServerOptions? options = null)
    {
        var server = new IpyRpcServer(options);
        server.Config(new()
        {
            ["*_json"] = new() { InputSerialization = Serialization.Json, OutputSerialization = Serialization.Json },
            ["*_binary"] = new() { InputSerialization = Serialization.MessagePack, OutputSerialization = Serialization.MessagePack },
            ["*"] = new() { Timeout = TimeSpan.FromMinutes(5) },
        });
        server.Register(typeof(Demo));
        return server;
    }
}
