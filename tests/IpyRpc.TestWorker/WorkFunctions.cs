namespace IpyRpc.TestWorker;

/// <summary>What worker processes run in the integration tests.</summary>
public static class WorkFunctions
{
    /// <summary>Prints a line per step, pausing between them; says which process did it.</summary>
    [IpyRpcExport("work.slow")]
    public static async Task<string> Slow(string tag, int steps, int pauseMs, CancellationToken ct)
    {
        for (int i = 1; i <= steps; i++)
        {
            Console.WriteLine($"{tag} step {i} on {Environment.ProcessId}");
            await Task.Delay(pauseMs, ct);
        }

        return $"{tag} done by {Environment.ProcessId}";
    }

    /// <summary>
    /// Prints a line, then waits until the file <paramref name="gate"/> exists before it prints another
    /// and returns: whoever creates the file has seen the first line while the job was still running.
    /// </summary>
    [IpyRpcExport("work.gated")]
    public static async Task<string> Gated(string tag, string gate, CancellationToken ct)
    {
        Console.WriteLine($"{tag} waiting on {Environment.ProcessId}");
        while (!File.Exists(gate)) await Task.Delay(10, ct);
        Console.WriteLine($"{tag} released on {Environment.ProcessId}");
        return $"{tag} done by {Environment.ProcessId}";
    }

    /// <summary>Takes a number of steps, reporting each as progress; says how many it took.</summary>
    [IpyRpcExport("work.steps")]
    public static async Task<int> Steps(int count, IProgress<int> progress)
    {
        for (int i = 1; i <= count; i++)
        {
            await Task.Yield();
            progress.Report(i);
        }

        return count;
    }

    /// <summary>Counts from one up to a number, an item at a time.</summary>
    [IpyRpcExport("work.stream")]
    public static async IAsyncEnumerable<int> Stream(int to)
    {
        for (int i = 1; i <= to; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    /// <summary>Counts from one up to a number; after the first half, waits until the file <paramref name="gate"/> exists.</summary>
    [IpyRpcExport("work.gated_stream")]
    public static async IAsyncEnumerable<int> GatedStream(int to, string gate, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        for (int i = 1; i <= to; i++)
        {
            if (i == to / 2 + 1)
            {
                while (!File.Exists(gate)) await Task.Delay(10, ct);
            }

            yield return i;
        }
    }

    /// <summary>Squares a number.</summary>
    [IpyRpcExport("work.square")]
    public static long Square(long x) => x * x;

    /// <summary>The square of a number, after <paramref name="ms"/> milliseconds: a job too long for one worker to drain a burst alone.</summary>
    [IpyRpcExport("work.square_after")]
    public static long SquareAfter(long x, int ms)
    {
        Thread.Sleep(ms);
        return x * x;
    }

    /// <summary>The worker's process id.</summary>
    [IpyRpcExport("work.pid")]
    public static int Pid() => Environment.ProcessId;

    /// <summary>Waits until cancelled, printing that it started, then that its token fired.</summary>
    [IpyRpcExport("work.wait_for_cancel")]
    public static async Task<string> WaitForCancel(CancellationToken ct)
    {
        Console.WriteLine($"waiting on {Environment.ProcessId}");
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine($"cancelled on {Environment.ProcessId}");
            throw;
        }

        return "never";
    }
}
