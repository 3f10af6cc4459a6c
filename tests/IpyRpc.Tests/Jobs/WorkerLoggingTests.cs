using IpyRpc.Jobs;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Tests;

/// <summary>A worker says what goes wrong around its jobs, with context, instead of retrying in silence.</summary>
public sealed class WorkerLoggingTests
{
    /// <summary>A store that is down: taking a job fails until the test is over.</summary>
    private sealed class DownQueue : IJobQueue
    {
        public string Name => "down-store";
        public bool IsDurable => true;
        public ValueTask<JobTicket> SubmitAsync(JobRequest request, IJobObserver? observer = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IDisposable?> WatchAsync(string jobId, long afterSequence, IJobObserver observer, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<JobInfo?> GetAsync(string jobId, bool withOutput = false, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<IReadOnlyList<JobInfo>> ListAsync(JobQuery? query = null, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<bool> CancelAsync(string jobId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask ReleaseAsync(string jobId, CancellationToken cancellationToken = default) => throw new NotSupportedException();
        public ValueTask<JobLease?> TakeAsync(string workerId, TimeSpan leaseDuration, CancellationToken cancellationToken) => throw new IOException("the store is down");
        public ValueTask DisposeAsync() => default;
    }

    [Fact]
    public async Task AStoreThatCannotBeReachedIsLoggedWithTheWorkerAndTheQueue()
    {
        var log = new ListLogger();
        await using IpyRpcWorker worker = new IpyRpcWorker(new DownQueue(), new IpyRpcWorkerOptions { Concurrency = 1, LoggerFactory = log, WorkerId = "w-1" }).Register(typeof(TraceFunctions)).Start();
        DateTime until = DateTime.UtcNow.AddSeconds(5);
        while (DateTime.UtcNow < until)
        {
            lock (log.Entries) if (log.Entries.Count > 0) break;
            await Task.Delay(20);
        }

        lock (log.Entries)
        {
            (LogLevel level, string message, Exception? exception) = log.Entries[0];
            Assert.Equal(LogLevel.Warning, level);
            Assert.Equal("Worker w-1 could not take a job from down-store; retrying", message);
            Assert.IsType<IOException>(exception);
        }
    }
}
