using System.Text.RegularExpressions;

namespace IpyRpc.Integration.Tests;

/// <summary>samples/Pointers, run as a newcomer runs it: a worker process keeps a large array, the client slices it and passes it on.</summary>
public sealed class PointersSampleTests
{
    [Fact]
    public async Task ThePointersSampleSlicesTenRowsFromTheWorkerAndFeedsThePointerToASecondCall()
    {
        string output = await SampleProcess.RunAsync("Pointers.dll");

        int worker = int.Parse(Regex.Match(output, @"worker (\d+) ready; its values are served at tcp://127\.0\.0\.1:\d+").Groups[1].Value);
        Assert.Matches(@"pointer: double\[,\]\[1000000, 8\] \(64000000 bytes\) at zmq://127\.0\.0\.1:\d+/data/[0-9a-f]{32}", output);
        Assert.Contains("the server holds 0 values", output);
        Assert.Contains($"simulated 1,000,000 steps of 8 walkers in process {worker}", output);
        Assert.Equal(10, Regex.Matches(output, @"^  [+-]\d\.\d{3}( [+-]\d\.\d{3}){7}$", RegexOptions.Multiline).Count);
        long fetched = long.Parse(Regex.Match(output, @"fetched ([\d,]+) bytes of the array's 64,000,000").Groups[1].Value.Replace(",", ""));
        Assert.InRange(fetched, 640, 2000);
        Assert.Contains($"averaged 1,000,000 rows in process {worker}", output);
        Assert.Matches(@"column means:( [+-]\d+\.\d{3}){8}", output);
        long received = long.Parse(Regex.Match(output, @"the client received ([\d,]+) bytes from the server in all").Groups[1].Value.Replace(",", ""));
        Assert.InRange(received, 1, 10_000);
        Assert.Contains($"fetched 100 of 1,000,000 rows in process {worker}", output);
        Assert.Contains("averaged 100 rows", output);
        Assert.Matches(@"window means:( [+-]\d+\.\d{3}){8}", output);
        Assert.Contains("after release: pointer_released", output);
        Assert.Contains("worker exited with 0", output);
    }
}
