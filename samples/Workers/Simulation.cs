using IpyRpc;

namespace Workers;

/// <summary>The work the sample's worker processes do.</summary>
public static class Simulation
{
    /// <summary>Runs a slow simulation, printing its progress as it goes.</summary>
    /// <param name="steps">How many steps to simulate.</param>
    /// <param name="cancellationToken">Stops the simulation; fires on whichever worker runs it.</param>
    /// <returns>What was computed, and which worker process computed it.</returns>
    [IpyRpcExport("simulate")]
    public static async Task<string> Simulate(int steps, CancellationToken cancellationToken)
    {
        double energy = 1.0;
        for (int i = 1; i <= steps; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(400), cancellationToken);
            energy *= 0.9;
            Console.WriteLine($"step {i}/{steps}: energy {energy:F4} (worker process {Environment.ProcessId})");
        }

        return $"final energy {energy:F4}, computed by worker process {Environment.ProcessId}";
    }

    /// <summary>The energy after each step of a simulation, as the worker computes it: a stream.</summary>
    /// <param name="steps">How many steps to simulate.</param>
    /// <param name="cancellationToken">Stops the simulation.</param>
    /// <returns>The energy after each step.</returns>
    [IpyRpcExport("trajectory")]
    public static async IAsyncEnumerable<double> Trajectory(int steps, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        double energy = 1.0;
        for (int i = 1; i <= steps; i++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            energy *= 0.9;
            yield return energy;
        }
    }

    /// <summary>Squares a number: a short job, to see jobs spread over the workers.</summary>
    /// <param name="x">The number.</param>
    /// <returns>Its square, and the worker process that computed it.</returns>
    [IpyRpcExport("square")]
    public static string Square(long x) => $"{x}² = {x * x} (worker process {Environment.ProcessId})";
}
