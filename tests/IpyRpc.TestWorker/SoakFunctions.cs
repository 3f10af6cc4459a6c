using System.Runtime.CompilerServices;

namespace IpyRpc.TestWorker;

/// <summary>What the integration tests' soak calls (in process, beside its server): quick answers, echoes, talk, streams, calls back to the caller, failures and waits that are cancelled.</summary>
public static class SoakFunctions
{
    /// <summary>How many <see cref="Sleep"/> calls are running now (the soak waits for none at its end).</summary>
    public static int Sleeping;

    /// <summary>Adds two numbers.</summary>
    /// <param name="a">The first.</param>
    /// <param name="b">The second.</param>
    [IpyRpcExport("soak.add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Returns the bytes it was given.</summary>
    /// <param name="data">The bytes.</param>
    [IpyRpcExport("soak.echo")]
    public static byte[] Echo(byte[] data) => data;

    /// <summary>Prints <paramref name="lines"/> numbered lines, yielding now and then, and returns how many.</summary>
    /// <param name="lines">How many lines.</param>
    [IpyRpcExport("soak.talk")]
    public static async Task<int> Talk(int lines)
    {
        for (int i = 0; i < lines; i++)
        {
            Console.WriteLine($"soak line {i}");
            if (i % 8 == 7) await Task.Yield();
        }

        return lines;
    }

    /// <summary>The numbers 0 to <paramref name="count"/> − 1 as doubles (a result to keep where it was made and fetch by rows).</summary>
    /// <param name="count">How many.</param>
    [IpyRpcExport("soak.range")]
    public static double[] Range(int count)
    {
        var values = new double[count];
        for (int i = 0; i < count; i++) values[i] = i;
        return values;
    }

    /// <summary>Yields 0 to <paramref name="count"/> − 1 as a stream.</summary>
    /// <param name="count">How many.</param>
    /// <param name="cancellationToken">Stops it.</param>
    [IpyRpcExport("soak.count")]
    public static async IAsyncEnumerable<int> Count(int count, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (int i = 0; i < count; i++)
        {
            if ((i & 255) == 255) await Task.Yield();
            yield return i;
        }
    }

    /// <summary>Asks the caller to triple <paramref name="x"/> (its <c>soak_client.triple</c>) and returns that plus one.</summary>
    /// <param name="x">The number.</param>
    /// <param name="caller">The caller's connection.</param>
    [IpyRpcExport("soak.ask_back")]
    public static async Task<int> AskBack(int x, IpyRpcConnection caller) => await caller.CallAsync<int>("soak_client.triple", x) + 1;

    /// <summary>Who the server says called: the connection's principal, or "anonymous".</summary>
    /// <param name="connection">The caller's connection.</param>
    [IpyRpcExport("soak.whoami")]
    public static string WhoAmI(IpyRpcConnection connection) => connection.Principal.Identity?.Name ?? "anonymous";

    /// <summary>Throws <see cref="InvalidOperationException"/> with <paramref name="message"/>.</summary>
    /// <param name="message">The message.</param>
    [IpyRpcExport("soak.fail")]
    public static int Fail(string message) => throw new InvalidOperationException(message);

    /// <summary>Waits <paramref name="ms"/> milliseconds, or until cancelled, and returns <paramref name="ms"/>.</summary>
    /// <param name="ms">How long.</param>
    /// <param name="cancellationToken">The call's cancellation.</param>
    [IpyRpcExport("soak.sleep")]
    public static async Task<int> Sleep(int ms, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref Sleeping);
        try
        {
            await Task.Delay(ms, cancellationToken);
            return ms;
        }
        finally
        {
            Interlocked.Decrement(ref Sleeping);
        }
    }
}

/// <summary>What the soak's server publishes to its clients while they call it.</summary>
public static class SoakEvents
{
    /// <summary>A number that only grows: a subscriber must see it grow in every event it gets.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<long> Ticked = new("soak.ticked");
}

/// <summary>What the soak's clients export for the server to call back.</summary>
public static class SoakClientSide
{
    /// <summary>Triples a number, saying so.</summary>
    /// <param name="x">The number.</param>
    [IpyRpcExport("soak_client.triple")]
    public static int Triple(int x)
    {
        Console.WriteLine("tripling");
        return 3 * x;
    }
}
