using System.Runtime.CompilerServices;
using IpyRpc;
using IpyRpc.Jobs;

namespace IpyRpc.Tests.BothWays;

/// <summary>A payload of the contract's events.</summary>
public sealed record Tick(int Number, string Note);

/// <summary>Events the contract's server publishes.</summary>
public static class BothWaysEvents
{
    /// <summary>A numbered tick.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<Tick> Ticked = new("bw.ticked");

    /// <summary>Something else, to check that subscriptions stay apart.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<string> Other = new("bw.other");
}

/// <summary>What a client of the contract exports for the server to call back.</summary>
public static class CallerSide
{
    /// <summary>Answers a question on the caller's side, printing as it goes.</summary>
    /// <param name="question">What to answer.</param>
    [IpyRpcExport("caller.answer")]
    public static string Answer(string question)
    {
        Console.WriteLine("thinking about " + question);
        return "answer to " + question;
    }

    /// <summary>Fails on the caller's side.</summary>
    /// <param name="why">The message.</param>
    [IpyRpcExport("caller.fail")]
    public static void Fail(string why) => throw new InvalidOperationException(why);

    /// <summary>Waits until cancelled.</summary>
    [IpyRpcExport("caller.wait")]
    public static async Task<int> Wait(CancellationToken cancellationToken)
    {
        await Task.Delay(Timeout.Infinite, cancellationToken);
        return 0;
    }
}

/// <summary>The contract server's functions.</summary>
public static class ServerSide
{
    /// <summary>How far the last cancellable stream got, and whether its producer stopped.</summary>
    public static long Produced;

    /// <summary>Completed when the cancellable stream's producer has unwound.</summary>
    public static TaskCompletionSource ProducerStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Asks the caller through its own connection and returns what it said.</summary>
    /// <param name="question">The question.</param>
    /// <param name="caller">The caller's connection.</param>
    [IpyRpcExport("bw.ask_caller")]
    public static async Task<string> AskCaller(string question, IpyRpcConnection caller)
    {
        var lines = new List<string>();
        string answer = await caller.Proxy<CallerSideClient>().Caller.Answer(question, new CallOptions { Output = (_, text) => { lock (lines) lines.Add(text); } });
        lock (lines) return answer + " | printed: " + string.Concat(lines).Trim();
    }

    /// <summary>Makes the caller fail and reports what arrived.</summary>
    /// <param name="caller">The caller's connection.</param>
    [IpyRpcExport("bw.make_caller_fail")]
    public static async Task<string> MakeCallerFail(IpyRpcConnection caller)
    {
        try
        {
            await caller.Proxy<CallerSideClient>().Caller.Fail("refused by the caller");
            return "no exception";
        }
        catch (RemoteException e)
        {
            return e.RemoteType + ": " + e.Message;
        }
    }

    /// <summary>Calls the caller with a timeout it cannot meet.</summary>
    /// <param name="caller">The caller's connection.</param>
    [IpyRpcExport("bw.time_out_caller")]
    public static async Task<string> TimeOutCaller(IpyRpcConnection caller)
    {
        try
        {
            await caller.Proxy<CallerSideClient>().Caller.Wait(new CallOptions { Timeout = TimeSpan.FromMilliseconds(200) });
            return "no timeout";
        }
        catch (IpyRpcException e)
        {
            return e.Code;
        }
    }

    /// <summary>Submits work to the caller and follows it through the job handle: state, callback, wait with a timeout.</summary>
    /// <param name="caller">The caller's connection.</param>
    [IpyRpcExport("bw.submit_to_caller")]
    public static async Task<string> SubmitToCaller(IpyRpcConnection caller)
    {
        IpyRpcJob<string> job = await caller.SubmitAsync(() => caller.Proxy<CallerSideClient>().Caller.Answer("a job"));
        var called = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        job.OnCompleted(j => called.TrySetResult(j.State.ToString()));
        string result = await job.WaitAsync(TimeSpan.FromSeconds(10));
        string state = await called.Task.WaitAsync(TimeSpan.FromSeconds(10));
        JobInfo info = await job.RefreshAsync();
        IpyRpcJob<int> waiting = await caller.SubmitAsync(() => caller.Proxy<CallerSideClient>().Caller.Wait());
        string timedOut;
        try
        {
            await waiting.WaitAsync(TimeSpan.FromMilliseconds(100));
            timedOut = "no";
        }
        catch (TimeoutException)
        {
            timedOut = "yes";
        }

        bool cancelled = await waiting.CancelAsync();
        return $"{result}; callback saw {state}; info says {info.State}; timed out: {timedOut}; cancelled: {cancelled}";
    }

    /// <summary>Counts up, as a stream.</summary>
    /// <param name="count">How many.</param>
    /// <param name="cancellationToken">Stops it.</param>
    [IpyRpcExport("bw.count")]
    public static async IAsyncEnumerable<long> Count(long count, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        for (long i = 0; i < count; i++)
        {
            if ((i & 4095) == 0) await Task.Yield();
            yield return i;
        }
    }

    /// <summary>Counts up without a pause, then fails.</summary>
    /// <param name="count">How many items before the failure.</param>
    [IpyRpcExport("bw.count_then_fail")]
    public static async IAsyncEnumerable<long> CountThenFail(long count)
    {
        await Task.CompletedTask;
        for (long i = 0; i < count; i++) yield return i;
        throw new InvalidOperationException($"failed after {count} items");
    }

    /// <summary>Counts forever, slowly, remembering how far it got.</summary>
    /// <param name="cancellationToken">Stops it.</param>
    [IpyRpcExport("bw.count_forever")]
    public static async IAsyncEnumerable<long> CountForever([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            for (long i = 0; ; i++)
            {
                Interlocked.Exchange(ref Produced, i);
                yield return i;
                await Task.Delay(1, cancellationToken);
            }
        }
        finally
        {
            ProducerStopped.TrySetResult();
        }
    }

    /// <summary>Reports progress, then returns.</summary>
    /// <param name="steps">How many reports.</param>
    /// <param name="progress">Where the reports go.</param>
    [IpyRpcExport("bw.work")]
    public static async Task<string> Work(int steps, IProgress<Tick> progress)
    {
        for (int i = 1; i <= steps; i++)
        {
            progress.Report(new Tick(i, "step"));
            await Task.Yield();
        }

        return "done";
    }
}
