using IpyRpc;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>Functions the ZeroMQ tests call.</summary>
public static class ZmqFunctions
{
    /// <summary>Adds two integers.</summary>
    [IpyRpcExport("add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Echoes bytes.</summary>
    [IpyRpcExport("echo_bytes")]
    public static byte[] EchoBytes(byte[] data) => data;

    /// <summary>Echoes doubles.</summary>
    [IpyRpcExport("echo_doubles")]
    public static double[] EchoDoubles(double[] data) => data;

    /// <summary>Prints numbered lines, one at a time.</summary>
    [IpyRpcExport("count_lines")]
    public static async Task<int> CountLines(int count)
    {
        for (int i = 1; i <= count; i++)
        {
            Console.WriteLine($"line {i}");
            await Task.Yield();
        }

        return count;
    }

    /// <summary>Prints, waits for a gate, prints.</summary>
    [IpyRpcExport("print_wait_print")]
    public static async Task<string> PrintWaitPrint(string gate, CancellationToken ct)
    {
        Console.WriteLine("first");
        await Gates.WaitAsync(gate, ct);
        Console.WriteLine("second");
        return "done";
    }

    /// <summary>Throws.</summary>
    [IpyRpcExport("fail")]
    public static void Fail(string message) => throw new InvalidOperationException(message, new ArgumentException("inner"));

    /// <summary>
    /// Waits on a gate synchronously, holding the thread that runs it (at most 20 s); 1 once the gate opened. Opens
    /// <c>gate.started</c> first, and <c>gate.io</c> too when it runs on a ZeroMQ server's I/O thread.
    /// </summary>
    [IpyRpcExport("block")]
    public static int Block(string gate)
    {
        if (Thread.CurrentThread.Name?.StartsWith("IpyRpc.ZeroMq server", StringComparison.Ordinal) == true) Gates.Open(gate + ".io");
        Gates.Open(gate + ".started");
        return Gates.Get(gate).Task.Wait(TimeSpan.FromSeconds(20)) ? 1 : 0;
    }

    /// <summary>Waits on a gate.</summary>
    [IpyRpcExport("wait")]
    public static async Task<int> Wait(string gate, CancellationToken ct)
    {
        Gates.Open(gate + ".started");
        try
        {
            await Gates.WaitAsync(gate, ct);
        }
        catch (OperationCanceledException)
        {
            Gates.Open(gate + ".cancelled");
            throw;
        }

        return 1;
    }
}
