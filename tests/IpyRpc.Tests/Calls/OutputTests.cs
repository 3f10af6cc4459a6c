using IpyRpc;

namespace IpyRpc.Tests.Calls;

public sealed class OutputTests
{
    [Fact]
    public async Task OutputOfTwoConcurrentCallsArrivesSeparatelyAndLive()
    {
        await using InProcess p = await InProcess.StartAsync();
        var a = new List<string>();
        var b = new List<string>();
        var firstLineA = new TaskCompletionSource();
        string gateA = Gates.NewName("a"), gateB = Gates.NewName("b");

        Task<string> callA = p.Client.CallAsync<string>("print_wait_print", [gateA, "A"], new CallOptions
        {
            Output = (s, t) =>
            {
                lock (a) a.Add($"{s}:{t}");
                firstLineA.TrySetResult();
            },
        });
        Task<string> callB = p.Client.CallAsync<string>("print_wait_print", [gateB, "B"], new CallOptions { Output = (s, t) => { lock (b) b.Add($"{s}:{t}"); } });

        // The first line reaches the caller while the call is still blocked on its gate.
        await firstLineA.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(callA.IsCompleted);
        lock (a) Assert.Equal([$"Stdout:A first{Environment.NewLine}"], a);

        Gates.Open(gateA);
        Gates.Open(gateB);
        Assert.Equal("A", await callA);
        Assert.Equal("B", await callB);
        string nl = Environment.NewLine;
        Assert.Equal([$"Stdout:A first{nl}", $"Stdout:A second{nl}", $"Stderr:A error{nl}"], a);
        Assert.Equal([$"Stdout:B first{nl}", $"Stdout:B second{nl}", $"Stderr:B error{nl}"], b);
    }

    [Fact]
    public async Task OutputFollowsTheCallIntoTasksItStartsAndPartialLinesAreFlushedAtTheEnd()
    {
        await using InProcess p = await InProcess.StartAsync();
        Assert.Equal(1, await p.Client.CallAsync<int>("print_from_child", "T"));
        Assert.Equal($"T from child{Environment.NewLine}T partial", string.Concat(p.Output.Select(o => o.Text)));
    }

    [Fact]
    public async Task ACallsSinkSeesOnlyOutputOfItsOwnFlow()
    {
        await using InProcess p = await InProcess.StartAsync();
        Assert.True(OutputCapture.IsInstalled);
        var captured = new List<string>();
        var go = new TaskCompletionSource();
        // Started before the scope, so it does not inherit it: its output is not this call's.
        Task elsewhere = Task.Run(async () =>
        {
            await go.Task;
            Console.WriteLine("elsewhere: goes to the real console");
        });
        using (OutputCapture.Begin(new LineBufferedSink((_, t) => captured.Add(t))))
        {
            go.SetResult();
            await elsewhere;
            Console.WriteLine("inside");
        }

        Console.WriteLine("after the scope: the real console again");
        Assert.Equal(["inside" + Environment.NewLine], captured);
        Assert.Empty(p.Output);
    }
}
