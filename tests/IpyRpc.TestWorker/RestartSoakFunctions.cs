using System.Collections.Concurrent;

namespace IpyRpc.TestWorker;

/// <summary>The functions of the servers the restart soak stops and starts: each counts how often each call ran.</summary>
public static class RestartSoakFunctions
{
    private static readonly ConcurrentDictionary<long, int> s_runs = new();

    /// <summary>How many times the call numbered <paramref name="x"/> ran, on every server.</summary>
    public static int Runs(long x) => s_runs.GetValueOrDefault(x);

    /// <summary>Squares a number, counting the run.</summary>
    /// <param name="x">The number, unique to its call.</param>
    [IpyRpcExport("restart_soak.square")]
    public static long Square(long x)
    {
        s_runs.AddOrUpdate(x, 1, (_, n) => n + 1);
        return x * x;
    }
}
