using System.Runtime.CompilerServices;
using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

/// <summary>Streaming functions for jobs.</summary>
public static class StreamJobFunctions
{
    /// <summary>Yields 1 to <paramref name="to"/>, printing after each; waits for the gate "name.half" before the second half.</summary>
    [IpyRpcExport("sjob.count")]
    public static async IAsyncEnumerable<int> Count(string name, int to, [EnumeratorCancellation] CancellationToken ct)
    {
        for (int i = 1; i <= to; i++)
        {
            if (i == to / 2 + 1)
            {
                Gates.Open(name + ".waiting");
                await Gates.WaitAsync(name + ".half", ct);
            }

            yield return i;
            Console.WriteLine($"made {i}");
        }

        Gates.Open(name + ".done");
    }

    /// <summary>Yields two items, then fails.</summary>
    [IpyRpcExport("sjob.fail_after_two")]
    public static async IAsyncEnumerable<string> FailAfterTwo()
    {
        yield return "one";
        await Task.Yield();
        yield return "two";
        throw new InvalidOperationException("broke after two");
    }
}

public sealed class StreamJobTests
{
    private static IpyRpcServer Server()
    {
        var server = new IpyRpcServer();
        server.Register(typeof(StreamJobFunctions)).Register(typeof(ShapeFunctions));
        return server;
    }

    private static Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, List<string>? output = null) => ServerJobTests.ConnectAsync(server, output);

    [Fact]
    public async Task AStreamJobsItemsAreReadAsTheyAreMadeAndAgainFromAnotherClientOnceItHasEnded()
    {
        await using IpyRpcServer server = Server();
        string gate = Gates.NewName("sjob");
        string id;
        var seen = new List<string>();
        await using (IpyRpcClient first = await ConnectAsync(server, seen))
        {
            IpyRpcJob<long> job = await first.SubmitAsync<long>("sjob.count", gate, 10);
            id = job.Id;
            var items = new List<int>();
            await using IAsyncEnumerator<int> reading = job.ReadItemsAsync<int>().GetAsyncEnumerator();
            // The first half comes while the job waits at its gate: read live, not after the end.
            for (int i = 0; i < 5; i++)
            {
                Assert.True(await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20)));
                items.Add(reading.Current);
            }

            await Gates.WaitAsync(gate + ".waiting");
            Assert.False(Gates.Get(gate + ".done").Task.IsCompleted);
            Gates.Open(gate + ".half");
            while (await reading.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(20))) items.Add(reading.Current);

            Assert.Equal(Enumerable.Range(1, 10), items);
            Assert.Equal(JobState.Succeeded, job.State);
            Assert.Equal(10L, await job.WaitAsync(TimeSpan.FromSeconds(20))); // the result is the count
            // The output was printed once, in its place, however often it was replayed.
            lock (seen) Assert.Equal(Enumerable.Range(1, 10).Select(i => $"made {i}\n"), seen);
            Assert.Equal(10, job.Output.Count);
        }

        // Another client, after the first has gone: every item again, from the job's record.
        await using IpyRpcClient second = await ConnectAsync(server);
        IpyRpcJob<long> again = await second.AttachAsync<long>(id);
        Assert.Equal(Enumerable.Range(1, 10), await again.ReadItemsAsync<int>().ToListAsync());
        Assert.Equal(Enumerable.Range(1, 10), await again.ReadItemsAsync<int>().ToListAsync()); // each reading from the first
    }

    [Fact]
    public async Task AStreamJobThatFailsGivesItsItemsThenItsError()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        IpyRpcJob<long> job = await client.SubmitAsync<long>("sjob.fail_after_two");
        var items = new List<string>();
        var failure = await Assert.ThrowsAsync<RemoteException>(async () =>
        {
            await foreach (string item in job.ReadItemsAsync<string>()) items.Add(item);
        });
        Assert.Equal(["one", "two"], items);
        Assert.Equal("System.InvalidOperationException", failure.RemoteType);
        Assert.Contains("broke after two", failure.Message);
        Assert.Equal(JobState.Failed, job.State);
    }

    [Fact]
    public async Task StoppingTheReadingEarlyLeavesTheJobRunning()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        string gate = Gates.NewName("sjob-stop");
        IpyRpcJob<long> job = await client.SubmitAsync<long>("sjob.count", gate, 6);
        await foreach (int item in job.ReadItemsAsync<int>())
        {
            if (item == 2) break;
        }

        using (var cts = new CancellationTokenSource())
        {
            await Gates.WaitAsync(gate + ".waiting");
            IAsyncEnumerator<int> reading = job.ReadItemsAsync<int>(cts.Token).GetAsyncEnumerator();
            Assert.True(await reading.MoveNextAsync());
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
            {
                while (await reading.MoveNextAsync())
                {
                }
            });
            await reading.DisposeAsync();
        }

        Assert.Equal(JobState.Running, (await job.RefreshAsync()).State);
        Gates.Open(gate + ".half");
        Assert.Equal(6L, await job.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(Enumerable.Range(1, 6), await job.ReadItemsAsync<int>().ToListAsync());
    }

    [Fact]
    public async Task ItemsTheRecordNoLongerHasAreNamedNotSilentlySkipped()
    {
        // A record of 2,000 bytes keeps the last batches of 2,000 numbers (each batch of 256 is over 600 bytes as recorded).
        var queue = new InMemoryJobQueue(new InMemoryJobQueueOptions { Retention = new JobRetention { MaxOutputBytesPerJob = 2000 } });
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue });
        server.Register(typeof(IpyRpc.Tests.BothWays.ServerSide));
        await using IpyRpcClient client = await ConnectAsync(server);
        IpyRpcJob<long> job = await client.SubmitAsync<long>("bw.count", 2000);
        Assert.Equal(2000L, await job.WaitAsync(TimeSpan.FromSeconds(20)));

        var items = new List<long>();
        var gone = await Assert.ThrowsAsync<IpyRpcNotFoundException>(async () =>
        {
            await foreach (long item in job.ReadItemsAsync<long>()) items.Add(item);
        });
        Assert.NotEmpty(items);
        Assert.Equal(Enumerable.Range(2000 - items.Count, items.Count).Select(i => (long)i), items); // the last ones, in order
        Assert.Contains($"made 2000 items, of which the first {2000 - items.Count} are no longer recorded", gone.Message);
        Assert.Contains("MaxOutputBytesPerJob", gone.Message);
    }

    [Fact]
    public async Task AJobOfAFunctionThatDoesNotStreamHasNoItemsToRead()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server);
        IpyRpcJob<int> job = await client.SubmitAsync<int>("add", 2, 3);
        var wrong = await Assert.ThrowsAsync<InvalidOperationException>(async () => await job.ReadItemsAsync<int>().ToListAsync());
        Assert.Contains("add does not stream items", wrong.Message);
        Assert.Equal(5, await job);
    }
}
