using System.Collections.Concurrent;
using IpyRpc.Tests.Jobs;

namespace IpyRpc.Tests.Calls;

/// <summary>Functions that block until another call lets them go.</summary>
public static class GateFunctions
{
    private static readonly ConcurrentDictionary<string, (ManualResetEventSlim Started, ManualResetEventSlim Open)> Gates = new();

    private static (ManualResetEventSlim Started, ManualResetEventSlim Open) Gate(string key) => Gates.GetOrAdd(key, _ => (new ManualResetEventSlim(), new ManualResetEventSlim()));

    /// <summary>Blocks its thread until <c>gate.open</c> is called with the same key (at most ten seconds); says whether it was.</summary>
    [IpyRpcExport("gate.wait")]
    public static bool Wait(string key)
    {
        (ManualResetEventSlim started, ManualResetEventSlim open) = Gate(key);
        started.Set();
        return open.Wait(TimeSpan.FromSeconds(10));
    }

    /// <summary>Lets <c>gate.wait</c> with this key go.</summary>
    [IpyRpcExport("gate.open")]
    public static bool Open(string key)
    {
        Gate(key).Open.Set();
        return true;
    }

    /// <summary>Waits (at most ten seconds) until <c>gate.wait</c> with this key has begun.</summary>
    public static bool Started(string key) => Gate(key).Started.Wait(TimeSpan.FromSeconds(10));
}

/// <summary>
/// In process, a receive loop with nothing more to receive lends its thread to what the last message started (on the
/// server, the job a waiting worker was handed; on the client, the caller its reply completed), once its next receive
/// is waiting; and the request or reply of a lone call sent from a lent thread is taken in on that same thread once
/// what it runs returns (held wake-ups), so a run of small calls wakes no thread-pool thread at all. These tests prove
/// it happens, and that it never costs the connection its receiving: a job or a caller that blocks on the lent thread
/// leaves both sides receiving (a held wake-up is then performed by the watch thread). Counted in the process's thread
/// pool, so run apart from other tests.
/// </summary>
[Collection(nameof(ProcessWideMemory))]
public sealed class LentThreadTests
{
    private static Task<InProcess> StartAsync() => InProcess.StartAsync(configure: s => s.Register(typeof(GateFunctions)));

    [Fact]
    public async Task ARunOfSmallCallsInProcessTakesNoThreadPoolWorkItems()
    {
        await using InProcess p = await StartAsync();
        const int Calls = 500;
        double perCall = await Task.Run(async () =>
        {
            for (int i = 0; i < 50; i++) await p.Client.CallAsync<int>("add", i, 1).ConfigureAwait(false); // warm up
            long before = ThreadPool.CompletedWorkItemCount;
            for (int i = 0; i < Calls; i++) Assert.Equal(i + 1, await p.Client.CallAsync<int>("add", i, 1).ConfigureAwait(false));
            return (ThreadPool.CompletedWorkItemCount - before) / (double)Calls;
        });

        // Without the held wake-ups, two a call: each side's receive loop resumed by a thread-pool thread when a
        // message arrives (four without the lending: the job's worker and the caller too). With them, one in a few
        // hundred calls (a thread that has run a long turn of them gives the rest to the pool).
        Assert.True(perCall < 0.5, $"a call took {perCall:0.00} thread-pool work items");
    }

    [Fact]
    public async Task AJobThatBlocksTheServersLentThreadLeavesTheServerReceiving()
    {
        await using InProcess p = await StartAsync();
        for (int i = 0; i < 10; i++)
        {
            string key = $"server-{i}-{Guid.NewGuid():N}";
            Task<bool> waiting = p.Client.CallAsync<bool>("gate.wait", key);
            Assert.True(GateFunctions.Started(key), $"round {i}: the blocking job never began");
            // The blocking job runs on the thread that received its call, if that thread had nothing more to receive:
            // the call that releases it must be received by another.
            Assert.True(await p.Client.CallAsync<bool>("gate.open", key).WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.True(await waiting.WaitAsync(TimeSpan.FromSeconds(10)), $"round {i}: the blocking job was never released");
        }
    }

    [Fact]
    public async Task ACallerThatWaitsSynchronouslyOnTheClientsLentThreadGetsItsNextReply()
    {
        await using InProcess p = await StartAsync();
        await Task.Run(async () =>
        {
            for (int i = 0; i < 20; i++)
            {
                Assert.Equal(2, await p.Client.CallAsync<int>("add", 1, 1).ConfigureAwait(false));
                // This continuation runs on the thread that received the reply, usually; blocking it must not keep the
                // client from receiving the next.
                Task<int> call = p.Client.CallAsync<int>("add", i, 2);
                Assert.True(call.Wait(TimeSpan.FromSeconds(10)), $"call {i} never answered while its caller blocked the thread that received the last reply");
                Assert.Equal(i + 2, call.Result);
            }
        });
    }
}
