using IpyRpc;

namespace IpyRpc.Http.Tests;

/// <summary>Functions the HTTP tests call.</summary>
public static class HttpFunctions
{
    /// <summary>Adds two integers.</summary>
    /// <param name="a">The first addend.</param>
    /// <param name="b">The second addend.</param>
    /// <returns>The sum.</returns>
    [IpyRpcExport("add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Scales a value.</summary>
    /// <param name="value">What to scale.</param>
    /// <param name="factor">By how much.</param>
    [IpyRpcExport("scale")]
    public static double Scale(double value, double factor = 2) => value * factor;

    /// <summary>Reports each of its steps, then says how many it worked.</summary>
    /// <param name="steps">How many.</param>
    /// <param name="progress">Each step.</param>
    [IpyRpcExport("work_with_progress")]
    public static async Task<string> WorkWithProgress(int steps, IProgress<int> progress)
    {
        for (int i = 1; i <= steps; i++)
        {
            await Task.Yield();
            progress.Report(i);
        }

        return $"worked {steps}";
    }

    /// <summary>0, 1, … up to n - 1, streamed.</summary>
    [IpyRpcExport("count_to")]
    public static async IAsyncEnumerable<int> CountTo(int n)
    {
        for (int i = 0; i < n; i++)
        {
            await Task.Yield();
            yield return i;
        }
    }

    /// <summary>Opens a gate; used as a notification target.</summary>
    [IpyRpcExport("open_gate")]
    public static void OpenGate(string gate) => Gates.Open(gate);

    /// <summary>Prints a line, waits for a gate, prints another.</summary>
    [IpyRpcExport("print_wait_print")]
    public static async Task<string> PrintWaitPrint(string gate, string tag, CancellationToken ct)
    {
        Console.WriteLine($"{tag} first");
        await Gates.WaitAsync(gate, ct);
        Console.WriteLine($"{tag} second");
        return tag;
    }

    /// <summary>Prints, then throws with an inner exception.</summary>
    /// <exception cref="InvalidOperationException">Always.</exception>
    [IpyRpcExport("fail")]
    public static void Fail(string message)
    {
        Console.WriteLine("about to fail");
        throw new InvalidOperationException(message, new FormatException("the inner one"));
    }

    /// <summary>Waits until cancelled.</summary>
    [IpyRpcExport("wait_for_cancel")]
    public static async Task<int> WaitForCancel(string gate, CancellationToken ct)
    {
        Gates.Open(gate + ".started");
        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException)
        {
            Gates.Open(gate + ".cancelled");
            throw;
        }

        return 0;
    }

    /// <summary>Returns a value no formatter can write.</summary>
    [IpyRpcExport("bad_result")]
    public static object BadResult() => new MemoryStream();

    /// <summary>The id of the caller's connection.</summary>
    [IpyRpcExport("connection_id")]
    public static string ConnectionId(IpyRpcConnection connection) => connection.Id;

    /// <summary>The mark of the HTTP request whose thread runs this call, if a request's thread runs it (see <see cref="RequestThread"/>).</summary>
    [IpyRpcExport("request_mark")]
    public static string RequestMark() => RequestThread.Mark ?? "";

    /// <summary>Opens <c>{gate}.started</c>, then holds its thread (no await) until the gate opens.</summary>
    [IpyRpcExport("hold")]
    public static string Hold(string gate)
    {
        Gates.Open(gate + ".started");
        if (!Gates.Get(gate).Task.Wait(TimeSpan.FromSeconds(30))) throw new TimeoutException($"gate {gate} never opened");
        return gate;
    }

    /// <summary>Counts itself in under <paramref name="key"/> for a few milliseconds; <see cref="MostAtOnce"/> says how many overlapped.</summary>
    [IpyRpcExport("overlap")]
    public static async Task<int> Overlap(string key)
    {
        Overlaps counts = OverlapsByKey.GetOrAdd(key, _ => new Overlaps());
        int now = Interlocked.Increment(ref counts.Now);
        lock (counts) counts.Most = Math.Max(counts.Most, now);
        Interlocked.Increment(ref counts.Calls);
        await Task.Delay(5);
        Interlocked.Decrement(ref counts.Now);
        return now;
    }

    /// <summary>The most <c>overlap</c> calls under <paramref name="key"/> that ran at once, and how many ran in all.</summary>
    public static (int Most, int Calls) MostAtOnce(string key) => OverlapsByKey.TryGetValue(key, out Overlaps? c) ? (c.Most, c.Calls) : (0, 0);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Overlaps> OverlapsByKey = new();

    private sealed class Overlaps
    {
        public int Now, Most, Calls;
    }

    /// <summary>Echoes bytes.</summary>
    [IpyRpcExport("echo_bytes")]
    public static byte[] EchoBytes(byte[] data) => data;

    /// <summary>Prints a line before and after, and returns the data back.</summary>
    [IpyRpcExport("print_echo_bytes")]
    public static byte[] PrintEchoBytes(byte[] data)
    {
        Console.WriteLine($"echoing {data.Length} bytes");
        Console.WriteLine("done");
        return data;
    }
}

/// <summary>What a test host's middleware marks a request's thread with while that request runs on it synchronously.</summary>
public static class RequestThread
{
    [ThreadStatic]
    private static string? t_mark;

    public static string? Mark => t_mark;

    /// <summary>Runs the rest of the pipeline with this thread marked until it first waits (a thread-pool thread never keeps a stale mark).</summary>
    public static Task Marked(Microsoft.AspNetCore.Http.HttpContext context, Microsoft.AspNetCore.Http.RequestDelegate next)
    {
        t_mark = context.TraceIdentifier;
        try
        {
            return next(context);
        }
        finally
        {
            t_mark = null;
        }
    }
}
