using IpyRpc;

namespace Calc.Contracts;

/// <summary>Arithmetic and statistics, served by whichever process implements this contract.</summary>
[IpyRpcContract]
public interface ICalculator
{
    /// <summary>Adds two integers.</summary>
    /// <param name="a">The first addend.</param>
    /// <param name="b">The second addend.</param>
    /// <returns>The sum of <paramref name="a"/> and <paramref name="b"/>.</returns>
    [IpyRpcExport("calc.add")]
    int Add(int a, int b);

    /// <summary>Summarizes a series of measurements: how many, their mean and their range.</summary>
    /// <param name="values">The measurements, in any order.</param>
    /// <param name="rounding">How the mean is rounded.</param>
    /// <param name="cancellationToken">Cancelled when the caller cancels (filled by the call, not sent).</param>
    /// <returns>The summary, with the mean rounded as asked.</returns>
    /// <remarks>The server prints a line for every summary it computes; the caller sees it live.</remarks>
    /// <exception cref="ArgumentException">The series is empty.</exception>
    [IpyRpcExport("calc.summarize")]
    Task<Summary> SummarizeAsync(double[] values, Rounding rounding = Rounding.Nearest, CancellationToken cancellationToken = default);

    /// <summary>Counts from one up to <paramref name="to"/>, one number at a time.</summary>
    /// <param name="to">The last number.</param>
    /// <returns>The numbers, as they are counted.</returns>
    [IpyRpcExport("calc.count")]
    IAsyncEnumerable<int> CountAsync(int to);

    /// <summary>The operations this calculator supports, by kind.</summary>
    /// <returns>Each kind of operation with its function names.</returns>
    [IpyRpcExport("calc.operations")]
    Dictionary<string, Operation[]> Operations();
}

/// <summary>What <see cref="ICalculator.SummarizeAsync"/> found.</summary>
/// <param name="Count">How many values there were.</param>
/// <param name="Mean">Their mean, rounded as asked.</param>
/// <param name="Min">The smallest.</param>
/// <param name="Max">The largest.</param>
public sealed record Summary(int Count, double Mean, double Min, double Max);

/// <summary>How a mean is rounded.</summary>
public enum Rounding
{
    /// <summary>Not at all.</summary>
    None,

    /// <summary>To the nearest hundredth.</summary>
    Nearest,

    /// <summary>Down to a whole number.</summary>
    Down,
}

/// <summary>One operation a calculator offers.</summary>
/// <param name="Function">The remote function's name.</param>
/// <param name="Kind">What kind of operation it is.</param>
public sealed record Operation(string Function, OperationKind Kind);

/// <summary>Kinds of operations.</summary>
public enum OperationKind
{
    /// <summary>Arithmetic on numbers.</summary>
    Arithmetic,

    /// <summary>Statistics over a series.</summary>
    Statistics,
}
