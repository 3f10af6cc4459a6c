using IpyRpc;

namespace IpyRpc.Tests;

/// <summary>Functions whose behaviour tests observe: output, failures, waiting, cancellation.</summary>
public static class BehaviourFunctions
{
    /// <summary>Prints a line, waits for a gate, prints another line and a line to stderr.</summary>
    /// <param name="gate">The gate to wait for.</param>
    /// <param name="tag">Marks every line.</param>
    /// <param name="ct">Cancels the wait.</param>
    [IpyRpcExport("print_wait_print")]
    public static async Task<string> PrintWaitPrint(string gate, string tag, CancellationToken ct)
    {
        Console.WriteLine($"{tag} first");
        Gates.Open(gate + ".printed");
        await Gates.WaitAsync(gate, ct);
        Console.WriteLine($"{tag} second");
        await Console.Error.WriteLineAsync($"{tag} error");
        return tag;
    }

    /// <summary>Prints from a task it starts, to show output follows the call into child tasks.</summary>
    [IpyRpcExport("print_from_child")]
    public static async Task<int> PrintFromChild(string tag)
    {
        await Task.Run(() => Console.WriteLine($"{tag} from child"));
        Console.Write($"{tag} partial");
        return 1;
    }

    /// <summary>Throws with an inner exception.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    [IpyRpcExport("fail")]
    public static void Fail(string message)
    {
        try
        {
            throw new FormatException("inner: " + message);
        }
        catch (FormatException e)
        {
            throw new InvalidOperationException(message, e);
        }
    }

    /// <summary>Blocks its thread, ignoring cancellation.</summary>
    [IpyRpcExport("sleep")]
    public static int Sleep(int milliseconds)
    {
        Thread.Sleep(milliseconds);
        return milliseconds;
    }

    /// <summary>Waits until cancelled, then reports that its token fired.</summary>
    [IpyRpcExport("wait_for_cancel")]
    public static async Task<string> WaitForCancel(string gate, CancellationToken cancellationToken)
    {
        Gates.Open(gate + ".started");
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Gates.Open(gate + ".cancelled");
            throw;
        }

        return "not cancelled";
    }

    /// <summary>Fails after an await, two frames deep in its own code.</summary>
    [IpyRpcExport("fail_later")]
    public static async Task FailLater(string message)
    {
        await Task.Yield();
        ThrowArgument(message);
    }

    private static void ThrowArgument(string message) => throw new ArgumentException(message);

    /// <summary>For config tests: a JSON-only function.</summary>
    [IpyRpcExport("compute_value_json")]
    public static int ComputeValueJson(int x) => x * 10;

    /// <summary>For config tests: a binary function.</summary>
    [IpyRpcExport("compute_value_binary")]
    public static int ComputeValueBinary(int x) => x * 100;
}

/// <summary>A service with state: instance methods need an instance.</summary>
public sealed class Counter
{
    private int _count;

    /// <summary>Counts one up.</summary>
    /// <param name="by">How much.</param>
    /// <returns>The new count.</returns>
    [IpyRpcExport("counter.next")]
    public int Next(int by = 1) => _count += by;

    /// <summary>A static method on a service type.</summary>
    [IpyRpcExport("counter.version")]
    public static string Version() => "1";
}

public sealed class NeedsArguments(string prefix)
{
    /// <summary>Prefixes a value.</summary>
    [IpyRpcExport("prefixed")]
    public string Prefixed(string value) => prefix + value;
}
