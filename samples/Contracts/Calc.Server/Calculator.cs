using System.Runtime.CompilerServices;
using Calc.Contracts;

namespace Calc.Server;

/// <summary>The implementation: plain C#, no attributes; the contract says what is remote.</summary>
public sealed class Calculator : ICalculator
{
    public int Add(int a, int b) => a + b;

    public async Task<Summary> SummarizeAsync(double[] values, Rounding rounding = Rounding.Nearest, CancellationToken cancellationToken = default)
    {
        if (values.Length == 0) throw new ArgumentException("The series is empty.", nameof(values));
        await Task.Yield();
        double mean = values.Average();
        mean = rounding switch
        {
            Rounding.Nearest => Math.Round(mean, 2),
            Rounding.Down => Math.Floor(mean),
            _ => mean,
        };
        Console.WriteLine($"summarized {values.Length} values in process {Environment.ProcessId}");
        return new Summary(values.Length, mean, values.Min(), values.Max());
    }

    public async IAsyncEnumerable<int> CountAsync(int to)
    {
        for (int i = 1; i <= to; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    public Dictionary<string, Operation[]> Operations() => new()
    {
        ["arithmetic"] = [new Operation("calc.add", OperationKind.Arithmetic)],
        ["statistics"] = [new Operation("calc.summarize", OperationKind.Statistics), new Operation("calc.count", OperationKind.Statistics)],
    };
}
