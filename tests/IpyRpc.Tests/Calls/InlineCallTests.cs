using IpyRpc.Jobs;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Tests.Calls;

/// <summary>Functions for the inline tests.</summary>
public static class InlineFunctions
{
    /// <summary>Adds, and prints what it did.</summary>
    [IpyRpcExport("inline.add")]
    public static int Add(int a, int b)
    {
        Console.WriteLine($"adding {a} and {b}");
        return a + b;
    }

    /// <summary>Fails with the message it is given.</summary>
    [IpyRpcExport("inline.fail")]
    public static int Fail(string message) => throw new InvalidOperationException(message);

    /// <summary>Adds after yielding once: asynchronous, so never inline.</summary>
    [IpyRpcExport("inline.add_async")]
    public static async Task<int> AddAsync(int a, int b)
    {
        await Task.Yield();
        return a + b;
    }
}

/// <summary>
/// <see cref="FunctionOptions.Inline"/>: a synchronous function's plain calls run on the thread that received
/// them, still as jobs; everything the option does not cover runs on the queue's workers, and says so.
/// </summary>
public sealed class InlineCallTests
{
    private static async Task<(IpyRpcServer Server, IpyRpcClient Client, List<string> Output)> StartAsync(GlobConfig config, ListLogger? log = null)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { LoggerFactory = log, WorkerId = "w" });
        server.Register(typeof(InlineFunctions)).Config(config);
        var output = new List<string>();
        IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions
        {
            Output = (_, text) =>
            {
                lock (output) output.Add(text);
            },
        });
        return (server, client, output);
    }

    private static async Task<JobInfo> OnlyJobAsync(IpyRpcClient client, string function)
    {
        IReadOnlyList<JobInfo> jobs = await client.ListJobsAsync(new JobQuery { Function = function });
        return Assert.Single(jobs);
    }

    [Fact]
    public async Task AnInlineCallIsStillAJobWithItsOutputItsResultAndItsFailures()
    {
        (IpyRpcServer server, IpyRpcClient client, List<string> output) = await StartAsync(new GlobConfig { ["inline.*"] = new() { Inline = true } });
        await using (server)
        await using (client)
        {
            Assert.Equal(5, await client.CallAsync<int>("inline.add", 2, 3));
            lock (output) Assert.Contains("adding 2 and 3\n", output);

            JobInfo job = await OnlyJobAsync(client, "inline.add");
            Assert.Equal(JobState.Succeeded, job.State);
            Assert.Equal("w:inline", job.Worker); // run by the receiving thread, not by worker "w"

            var e = await Assert.ThrowsAsync<RemoteException>(() => client.CallAsync<int>("inline.fail", "no good"));
            Assert.Equal("inline.fail: no good", e.Message);
            Assert.Equal("System.InvalidOperationException", e.RemoteType);
            Assert.Equal(JobState.Failed, (await OnlyJobAsync(client, "inline.fail")).State);
        }
    }

    [Fact]
    public async Task WithoutTheOptionSubmittedWithATimeoutOrAsynchronousCallsRunOnTheWorkers()
    {
        var log = new ListLogger();
        (IpyRpcServer server, IpyRpcClient client, _) = await StartAsync(new GlobConfig
        {
            ["inline.fail"] = new() { Inline = true },
            ["inline.add_async"] = new() { Inline = true },
        }, log);
        await using (server)
        await using (client)
        {
            Assert.Equal(5, await client.CallAsync<int>("inline.add", 2, 3));
            Assert.Equal("w", (await OnlyJobAsync(client, "inline.add")).Worker);

            Assert.Equal(7, await client.CallAsync<int>("inline.add_async", 3, 4));
            Assert.Equal("w", (await OnlyJobAsync(client, "inline.add_async")).Worker);
            lock (log.Entries)
            {
                Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning
                    && e.Message == "inline.add_async is configured Inline, but it is asynchronous (it returns a task or a stream): its calls run on the queue's workers.");
                Assert.DoesNotContain(log.Entries, e => e.Message.StartsWith("inline.fail", StringComparison.Ordinal));
            }

            // A submitted job's caller does not wait for it, and a timeout must be able to cut a call short: both go to a worker.
            IpyRpcJob<int> submitted = await client.SubmitAsync<int>("inline.fail", "submitted");
            await Assert.ThrowsAsync<RemoteException>(() => submitted.WaitAsync());
            await Assert.ThrowsAsync<RemoteException>(() => client.CallAsync<int>("inline.fail", ["timed"], new CallOptions { Timeout = TimeSpan.FromSeconds(30) }));
            IReadOnlyList<JobInfo> jobs = await client.ListJobsAsync(new JobQuery { Function = "inline.fail" });
            Assert.Equal(2, jobs.Count);
            Assert.All(jobs, j => Assert.Equal("w", j.Worker));
        }
    }

    [Fact]
    public async Task AFunctionOnADurableQueueIsNotRunInlineAndTheServerSaysWhy()
    {
        string path = Path.Combine(Path.GetTempPath(), $"ipyrpc-inline-{Guid.NewGuid():N}.db");
        var log = new ListLogger();
        try
        {
            await using var durable = new SqliteJobQueue(path, new SqliteJobQueueOptions { Name = "disk" });
            await using var server = new IpyRpcServer(new IpyRpcServerOptions { LoggerFactory = log, WorkerId = "w", AdditionalQueues = [durable] });
            server.Register(typeof(InlineFunctions)).Config(new GlobConfig { ["inline.add"] = new() { Inline = true, Queue = "disk" } });
            await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);

            Assert.Equal(9, await client.CallAsync<int>("inline.add", 4, 5));
            Assert.Equal("w", (await OnlyJobAsync(client, "inline.add")).Worker);
            lock (log.Entries)
            {
                Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning
                    && e.Message == "inline.add is configured Inline, but its queue \"disk\" is not an in-memory queue: its calls run on the queue's workers.");
            }
        }
        finally
        {
            foreach (string file in Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(path) + "*")) File.Delete(file);
        }
    }
}
