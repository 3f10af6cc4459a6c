using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

/// <summary>Functions for <see cref="SqliteCallTests"/>.</summary>
public static class SqliteCallFunctions
{
    public static TaskCompletionSource Started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public static TaskCompletionSource Go = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Adds.</summary>
    [IpyRpcExport("sqlcall.add")]
    public static int Add(int a, int b) => a + b;

    /// <summary>Says it started, then waits to be let go.</summary>
    [IpyRpcExport("sqlcall.hold")]
    public static async Task<int> Hold(int n)
    {
        Started.TrySetResult();
        await Go.Task;
        return n;
    }

    /// <summary>The same, under a name configured to outlive its caller's connection.</summary>
    [IpyRpcExport("sqlcall.hold_kept")]
    public static async Task<int> HoldKept(int n)
    {
        Started.TrySetResult();
        await Go.Task;
        return n;
    }
}

/// <summary>
/// Plain calls through a server whose queue is a SQLite file: a call that ends with its caller is written once, when it
/// ends, and its delivered result is released soon after; one configured to outlive its connection is written at once.
/// A second queue object on the same file looks on, as another process would.
/// </summary>
public sealed class SqliteCallTests : IAsyncLifetime
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ipyrpc-sqlcall-").FullName;

    private string File => Path.Combine(_folder, "jobs.db");

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        DateTime giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < giveUp, "The condition did not become true in time");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task APlainCallIsRecordedAsItEndsAndItsDeliveredResultIsReleased()
    {
        await using var queue = new SqliteJobQueue(File);
        await using var elsewhere = new SqliteJobQueue(File);
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, WorkerId = "w" });
        server.Register(typeof(SqliteCallFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);

        for (int i = 0; i < 20; i++) Assert.Equal(i + 5, await client.CallAsync<int>("sqlcall.add", i, 5));

        IReadOnlyList<JobInfo> jobs = [];
        await EventuallyAsync(async () => (jobs = await elsewhere.ListAsync(new JobQuery { Limit = 100 })).Count(j => j.ResultReleased) == 20);
        Assert.All(jobs, j => Assert.Equal((JobState.Succeeded, "sqlcall.add", 1, "w", false), (j.State, j.Function, j.Attempts, j.Worker, j.Detached)));
        Assert.All(jobs, j => Assert.Equal(0, j.RetainedBytes));
    }

    [Fact]
    public async Task ACallThatOutlivesItsConnectionIsOnDiskWhileItRunsAndOneThatEndsWithItIsNot()
    {
        await using var queue = new SqliteJobQueue(File, new SqliteJobQueueOptions { PollInterval = TimeSpan.FromSeconds(30) });
        await using var elsewhere = new SqliteJobQueue(File);
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, WorkerId = "w" });
        server.Register(typeof(SqliteCallFunctions)).Config(new GlobConfig { ["sqlcall.hold_kept"] = new() { CancelOnDisconnect = false } });
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        SqliteCallFunctions.Go = new(TaskCreationOptions.RunContinuationsAsynchronously);

        var calls = new List<Task<int>>();
        foreach ((string function, int n) in new[] { ("sqlcall.hold_kept", 1), ("sqlcall.hold", 2) })
        {
            SqliteCallFunctions.Started = new(TaskCreationOptions.RunContinuationsAsynchronously);
            calls.Add(client.CallAsync<int>(function, n));
            await SqliteCallFunctions.Started.Task.WaitAsync(TimeSpan.FromSeconds(20));
        }

        await Task.Delay(200);
        Assert.Equal(["sqlcall.hold_kept"], (await elsewhere.ListAsync()).Select(j => j.Function));

        SqliteCallFunctions.Go.TrySetResult();
        int[] results = await Task.WhenAll(calls);
        Assert.Equal([1, 2], results);
        IReadOnlyList<JobInfo> jobs = await elsewhere.ListAsync();
        Assert.Equal(["sqlcall.hold", "sqlcall.hold_kept"], jobs.Select(j => j.Function).Order());
        Assert.All(jobs, j => Assert.Equal(JobState.Succeeded, j.State));
    }
}
