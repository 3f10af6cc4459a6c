using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

public sealed class ShutdownTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ipyrpc-shutdown-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task AServerStoppingHandsItsRunningJobsBackToADurableQueueAtOnce()
    {
        string file = Path.Combine(_folder, "jobs.db");
        string name = Gates.NewName("handback");
        string id;
        await using (var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = new SqliteJobQueue(file), LeaseDuration = TimeSpan.FromMinutes(10) }))
        {
            server.Register(typeof(JobFunctions));
            await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
            id = (await client.SubmitAsync<int>("job.steps", name, 2)).Id;
            await Gates.WaitAsync(name + ".printed.1");
        }

        // Not left to lapse (ten minutes): queued again the moment the server stopped, so the next one runs it.
        await using var queue = new SqliteJobQueue(file);
        Assert.Equal(JobState.Queued, (await queue.GetAsync(id))!.State);
        await using var next = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue });
        next.Register(typeof(JobFunctions));
        await using IpyRpcClient again = await IpyRpcClient.ConnectInProcessAsync(next);
        Gates.Open(name + ".2");
        IpyRpcJob<int> job = await again.AttachAsync<int>(id);
        Assert.Equal(2, await job.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(2, (await queue.GetAsync(id))!.Attempts);
    }
}
