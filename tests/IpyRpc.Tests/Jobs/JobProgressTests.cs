using IpyRpc.Jobs;

namespace IpyRpc.Tests.Jobs;

/// <summary>A function that reports progress, for jobs.</summary>
public static class ProgressJobFunctions
{
    /// <summary>Reports each step of <paramref name="steps"/>; after the first half, waits for the gate "name.half".</summary>
    [IpyRpcExport("jprog.steps")]
    public static async Task<int> Steps(string name, int steps, IProgress<int> progress, CancellationToken ct)
    {
        for (int i = 1; i <= steps; i++)
        {
            if (i == steps / 2 + 1) await Gates.WaitAsync(name + ".half", ct);
            progress.Report(i);
            Console.WriteLine($"step {i}");
        }

        return steps;
    }
}

public sealed class JobProgressTests
{
    private sealed class Reports : IProgress<int>
    {
        private readonly List<int> _values = [];

        public void Report(int value)
        {
            lock (_values) _values.Add(value);
        }

        public int[] Values
        {
            get
            {
                lock (_values) return [.. _values];
            }
        }
    }

    [Fact]
    public async Task AJobsProgressIsFollowedLiveAndReplayedToWhoeverAttachesLater()
    {
        await using var server = new IpyRpcServer();
        server.Register(typeof(ProgressJobFunctions));
        var printed = new List<string>();
        string gate = Gates.NewName("jprog");
        string id;
        await using (IpyRpcClient first = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, t) => { lock (printed) printed.Add(t); } }))
        {
            // The function's IProgress is the job's: the server fills it, and records what it reports.
            IpyRpcJob<int> job = await first.SubmitAsync<int>("jprog.steps", gate, 6);
            id = job.Id;
            var reports = new Reports();
            Task<int> waiting = job.WaitAsync(reports);
            for (DateTime until = DateTime.UtcNow.AddSeconds(20); reports.Values.Length < 3 && DateTime.UtcNow < until;) await Task.Delay(10);
            Assert.Equal([1, 2, 3], reports.Values); // live, while the job waits at its gate
            Assert.False(waiting.IsCompleted);

            Gates.Open(gate + ".half");
            Assert.Equal(6, await waiting.WaitAsync(TimeSpan.FromSeconds(20)));
            Assert.Equal([1, 2, 3, 4, 5, 6], reports.Values);
            Assert.Equal(JobState.Succeeded, job.State);
            Assert.Equal(6, await job); // a plain wait as well; the output was printed once
            lock (printed) Assert.Equal(Enumerable.Range(1, 6).Select(i => $"step {i}\n"), printed);
        }

        // Later, from another client: every report again, from the job's record.
        await using IpyRpcClient second = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        var again = new Reports();
        Assert.Equal(6, await (await second.AttachAsync<int>(id)).WaitAsync(again));
        Assert.Equal([1, 2, 3, 4, 5, 6], again.Values);
    }
}
