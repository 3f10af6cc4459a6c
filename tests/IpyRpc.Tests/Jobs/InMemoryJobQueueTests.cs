using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

public sealed class InMemoryJobQueueTests : JobQueueContract
{
    protected override Task<IJobQueue> CreateAsync(JobRetention retention)
        => Task.FromResult<IJobQueue>(new InMemoryJobQueue(new InMemoryJobQueueOptions { Retention = retention }));
}
