using IpyRpc.Jobs;
using IpyRpc.Tests.Jobs;

namespace IpyRpc.Redis.Tests;

/// <summary>The contract against a real redis-server; each test on a queue name of its own.</summary>
[Collection(RedisCollection.Name)]
public sealed class RedisJobQueueTests(RedisFixture redis) : DurableJobQueueContract
{
    private readonly string _name = "contract-" + Guid.NewGuid().ToString("N")[..8];

    protected override async Task<IJobQueue> CreateAsync(JobRetention retention)
        => await RedisJobQueue.ConnectAsync(redis.Server.Configuration, new RedisJobQueueOptions { Name = _name, Retention = retention });
}
