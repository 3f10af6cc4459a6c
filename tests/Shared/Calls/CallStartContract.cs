using System.Collections.Concurrent;

namespace IpyRpc.Tests.Calls;

/// <summary>What the call-start contract's servers serve.</summary>
public static class StartFunctions
{
    private static readonly ConcurrentDictionary<string, int> s_runs = new();

    /// <summary>How many times <c>start.run</c> ran under <paramref name="tag"/>.</summary>
    public static int Runs(string tag) => s_runs.GetValueOrDefault(tag);

    /// <summary>Counts its run under a tag, and says how many there were.</summary>
    /// <param name="tag">Whose call this is.</param>
    [IpyRpcExport("start.run")]
    public static int Run(string tag) => s_runs.AddOrUpdate(tag, 1, (_, n) => n + 1);
}

/// <summary>
/// Calls whose start takes a while, as with an authorizer that looks something up (or a durable queue's round trip),
/// on every transport: the connection's other calls start meanwhile; a call cancelled meanwhile never runs; and no more
/// run at once than the connection's share. A transport's test class says how to serve and connect.
/// </summary>
public abstract class CallStartContract
{
    /// <summary>Serves <paramref name="server"/> and connects a client to it; the host is disposed before the server.</summary>
    protected abstract Task<(IpyRpcClient Client, IAsyncDisposable Host)> OpenAsync(IpyRpcServer server);

    /// <summary>Whether the client's requests share one ordered connection (a ping after a cancel is read after it).</summary>
    protected virtual bool Ordered => true;

    private sealed class Opened(IpyRpcServer server, IpyRpcClient client, IAsyncDisposable host) : IAsyncDisposable
    {
        public IpyRpcClient Client => client;

        public async ValueTask DisposeAsync()
        {
            await client.DisposeAsync();
            await host.DisposeAsync();
            await server.DisposeAsync();
        }
    }

    /// <summary>A server whose authorizer of <c>start.run</c> asks <paramref name="rule"/>, given the call's tag.</summary>
    private async Task<Opened> StartAsync(Func<string, Task> rule, int share = 64)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = share });
        server.Register(typeof(StartFunctions));
        server.Config(new GlobConfig
        {
            ["start.run"] = new FunctionOptions
            {
                Auth = async context =>
                {
                    if (context.Purpose == AuthorizationPurpose.Call) await rule((string)context.Arguments!["tag"]!);
                    return AuthorizationResult.Allow();
                },
            },
        });
        (IpyRpcClient client, IAsyncDisposable host) = await OpenAsync(server);
        return new Opened(server, client, host);
    }

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task CallsWhoseAuthorizerTakesTimeStartSideBySide()
    {
        // Each rule waits until four are deciding at once; calls handled one after another would never get there.
        string tag = Guid.NewGuid().ToString("N");
        int deciding = 0, most = 0;
        var allFour = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Opened opened = await StartAsync(async _ =>
        {
            int now = Interlocked.Increment(ref deciding);
            InterlockedMax(ref most, now);
            if (now >= 4) allFour.TrySetResult();
            await Task.WhenAny(allFour.Task, Task.Delay(TimeSpan.FromSeconds(3)));
            Interlocked.Decrement(ref deciding);
        });

        int[] answers = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => opened.Client.CallAsync<int>("start.run", tag))).WaitAsync(Patience);

        Assert.Equal(4, most);
        Assert.Equal([1, 2, 3, 4], answers.Order());
    }

    [Fact]
    public async Task ACallCancelledWhileItsAuthorizerDecidesNeverRunsAndTheConnectionGoesOn()
    {
        string cancelled = Guid.NewGuid().ToString("N"), after = Guid.NewGuid().ToString("N");
        var deciding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var decide = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using Opened opened = await StartAsync(async tag =>
        {
            if (tag != cancelled) return;
            deciding.TrySetResult();
            await decide.Task;
        });

        using var cancel = new CancellationTokenSource();
        Task<int> call = opened.Client.CallAsync<int>("start.run", [cancelled], null, cancel.Token);
        try
        {
            await deciding.Task.WaitAsync(Patience);
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
            // The cancel is read before the rule decides: after a ping on one ordered connection, else after a while.
            if (Ordered) await opened.Client.PingAsync().WaitAsync(Patience);
            else await Task.Delay(500);
        }
        finally
        {
            decide.TrySetResult(); // a failing test still lets the server stop
        }

        // The next call is answered (the cancelled one has had its turn to start), and the cancelled one never ran.
        Assert.Equal(1, await opened.Client.CallAsync<int>("start.run", after).WaitAsync(Patience));
        await opened.Client.PingAsync().WaitAsync(Patience);
        Assert.Equal(0, StartFunctions.Runs(cancelled));
    }

    [Fact]
    public async Task ARuleThatNeverDecidesIsNotWaitedForPastTheCallsTimeoutOrItsCancelAndTheRoomComesBack()
    {
        // One call at a time on this connection: a call whose rule never decides would, waited for, hold it for good.
        string hangs = Guid.NewGuid().ToString("N"), after = Guid.NewGuid().ToString("N");
        var never = new TaskCompletionSource();
        int asked = 0;
        await using Opened opened = await StartAsync(async tag =>
        {
            if (tag != hangs) return;
            Interlocked.Increment(ref asked);
            await never.Task; // a lookup that hangs, and does not watch the context's token
        }, share: 1);

        // Its timeout passes: the caller hears so, and the connection's one place is free again.
        await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => opened.Client.CallAsync<int>("start.run", [hangs], new CallOptions { Timeout = TimeSpan.FromMilliseconds(300) }).WaitAsync(Patience));
        Assert.Equal(1, await opened.Client.CallAsync<int>("start.run", after).WaitAsync(Patience));

        // Cancelled by its caller: the same.
        using var cancel = new CancellationTokenSource();
        Task<int> call = opened.Client.CallAsync<int>("start.run", [hangs], null, cancel.Token);
        while (Volatile.Read(ref asked) < 2) await Task.Delay(10).WaitAsync(Patience);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        Assert.Equal(2, await opened.Client.CallAsync<int>("start.run", after).WaitAsync(Patience));
        Assert.Equal(0, StartFunctions.Runs(hangs));
    }

    [Fact]
    public async Task CallsWhoseAuthorizerTakesTimeRunNoMoreAtOnceThanTheConnectionsShare()
    {
        // The share is taken when the call is looked at, not once its authorizer has decided: calls read side by side
        // had all passed the check before any counted.
        string tag = Guid.NewGuid().ToString("N");
        int deciding = 0, most = 0;
        await using Opened opened = await StartAsync(async _ =>
        {
            InterlockedMax(ref most, Interlocked.Increment(ref deciding));
            await Task.Delay(30);
            Interlocked.Decrement(ref deciding);
        }, share: 2);

        await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => opened.Client.CallAsync<int>("start.run", tag))).WaitAsync(Patience);

        Assert.Equal(24, StartFunctions.Runs(tag));
        Assert.InRange(most, 1, 2);
    }

    private static void InterlockedMax(ref int most, int now)
    {
        int seen = Volatile.Read(ref most);
        while (now > seen)
        {
            int was = Interlocked.CompareExchange(ref most, now, seen);
            if (was == seen) return;
            seen = was;
        }
    }
}
