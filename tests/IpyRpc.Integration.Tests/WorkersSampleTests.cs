using System.Text.RegularExpressions;

namespace IpyRpc.Integration.Tests;

/// <summary>samples/Workers, run as a newcomer runs it: one command, its own Redis and worker processes.</summary>
public sealed class WorkersSampleTests
{
    [Fact]
    public async Task TheWorkersSampleRunsALongJobOnAWorkerAndTheClientReattaches()
    {
        string output = await SampleProcess.RunAsync("Workers.dll");

        int[] workers = [.. Regex.Matches(output, @"worker (\d+) ready").Select(m => int.Parse(m.Groups[1].Value))];
        Assert.Equal(2, workers.Length);
        Assert.Matches(@"submitted job \S+ \((Queued|Running)\)", output);
        Assert.Contains("this client disconnects. The job runs on.", output);
        Assert.Matches(@"job \S+: Running, started .* attempt 1", output);
        Match result = Regex.Match(output, @"result: final energy 0\.2824, computed by worker process (\d+)");
        Assert.True(result.Success, output);
        Assert.Contains(int.Parse(result.Groups[1].Value), workers);
        Assert.Equal(12, Regex.Matches(output, @"^  step \d+/12", RegexOptions.Multiline).Count); // replayed and live, each step once
        Assert.Contains("first points, live: 0.9000, 0.8100, 0.7290", output);
        Assert.Contains("the job made 10 points", output);
        Assert.Contains("all 10 points again, from the job's record: the last 0.3487", output);
        Assert.All(workers, w => Assert.Contains($"worker {w} exited with 0", output));
    }
}
