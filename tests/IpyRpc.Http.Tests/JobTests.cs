using IpyRpc.Http;
using IpyRpc.Jobs;

namespace IpyRpc.Http.Tests;

public sealed class JobTests(HttpFixture fixture) : IClassFixture<HttpFixture>
{
    [Fact]
    public async Task JobsCanBeSubmittedListedAttachedAndCancelledOverHttp()
    {
        string gate = Gates.NewName("http-job");
        string id;
        await using (IpyRpcClient first = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address))
        {
            IpyRpcJob<string> job = await first.SubmitAsync<string>("print_wait_print", gate, "J");
            id = job.Id;
            Assert.Contains(await first.ListJobsAsync(new JobQuery { Function = "print_*" }), j => j.Id == id);
        }

        var seen = new List<string>();
        await using IpyRpcClient second = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, new IpyRpcClientOptions { Output = (_, t) => { lock (seen) seen.Add(t); } });
        IpyRpcJob<string> attached = await second.AttachAsync<string>(id);
        Task<string> result = attached.WaitAsync();
        Gates.Open(gate);
        Assert.Equal("J", await result.WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal(["J first\n", "J second\n"], seen);

        string waiting = Gates.NewName("http-cancel");
        IpyRpcJob<int> blocked = await second.SubmitAsync<int>("wait_for_cancel", waiting);
        await Gates.WaitAsync(waiting + ".started");
        Assert.True(await second.CancelJobAsync(blocked.Id));
        await Gates.WaitAsync(waiting + ".cancelled");
        await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => second.AttachAsync<int>("not-a-job"));
    }

    [Theory]
    [InlineData(HttpCarrier.WebSocket)]
    [InlineData(HttpCarrier.Requests)]
    public async Task AStreamJobsItemsAndAJobsProgressAreReadOverEitherCarrier(HttpCarrier carrier)
    {
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(fixture.Host.Address, carrier);
        IpyRpcJob<long> counting = await client.SubmitAsync<long>("count_to", 300);
        Assert.Equal(Enumerable.Range(0, 300), await counting.ReadItemsAsync<int>().ToListAsync());
        Assert.Equal(300L, await counting.WaitAsync(TimeSpan.FromSeconds(20)));

        IpyRpcJob<string> working = await client.SubmitAsync<string>("work_with_progress", 4);
        var reports = new List<int>();
        Assert.Equal("worked 4", await working.WaitAsync(new SynchronousProgress(reports)).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Equal([1, 2, 3, 4], reports);
    }

    private sealed class SynchronousProgress(List<int> values) : IProgress<int>
    {
        public void Report(int value)
        {
            lock (values) values.Add(value);
        }
    }
}
