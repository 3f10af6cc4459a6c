using IpyRpc.Jobs;

namespace IpyRpc.ZeroMq.Tests;

public sealed class ZeroMqJobTests
{
    [Fact]
    public async Task JobsCanBeSubmittedListedAttachedAndCancelledOverZeroMq()
    {
        await using ZmqServer s = ZmqServer.Start();
        string gate = Gates.NewName("zmq-job");
        string id;
        await using (IpyRpcClient first = await s.ConnectAsync())
        {
            IpyRpcJob<string> job = await first.SubmitAsync<string>("print_wait_print", gate);
            id = job.Id;
            Assert.Contains(await first.ListJobsAsync(), j => j.Id == id);
        }

        // Another connection (another DEALER) picks the job up after the first one left.
        var seen = new List<string>();
        await using IpyRpcClient second = await s.ConnectAsync(new IpyRpcClientOptions { Output = (_, t) => { lock (seen) seen.Add(t); } });
        IpyRpcJob<string> attached = await second.AttachAsync<string>(id);
        Task<string> result = attached.WaitAsync();
        Gates.Open(gate);
        Assert.Equal("done", await result.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(["first\n", "second\n"], seen);

        string waiting = Gates.NewName("zmq-cancel");
        IpyRpcJob<int> blocked = await second.SubmitAsync<int>("wait", waiting);
        await Gates.WaitAsync(waiting + ".started");
        Assert.True(await second.CancelJobAsync(blocked.Id));
        await Gates.WaitAsync(waiting + ".cancelled");
        // The function opens the gate as its token fires, just before it ends: its job's outcome is recorded after.
        DateTime giveUp = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        JobInfo info;
        while (!(info = await second.GetJobAsync(blocked.Id)).State.IsFinished())
        {
            Assert.True(DateTime.UtcNow < giveUp, $"the cancelled job is still {info.State}");
            await Task.Delay(20);
        }

        Assert.Equal(JobState.Cancelled, info.State);
    }
}
