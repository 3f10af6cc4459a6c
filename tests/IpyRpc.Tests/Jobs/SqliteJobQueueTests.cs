using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

/// <summary>The contract against a real SQLite file in a temporary folder of this test's own.</summary>
public sealed class SqliteJobQueueTests : DurableJobQueueContract
{
    private readonly string _folder = Directory.CreateTempSubdirectory("ipyrpc-sqlite-").FullName;

    protected override Task<IJobQueue> CreateAsync(JobRetention retention)
        => Task.FromResult<IJobQueue>(new SqliteJobQueue(Path.Combine(_folder, "jobs.db"), new SqliteJobQueueOptions { Retention = retention }));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }
}
