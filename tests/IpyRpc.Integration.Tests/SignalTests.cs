using System.Diagnostics;
using IpyRpc.Http;

namespace IpyRpc.Integration.Tests;

/// <summary>A console program hosting IpyRpcHttpServer stops on Ctrl+C (SIGINT) and SIGTERM.</summary>
public sealed class SignalTests
{
    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public async Task WaitForShutdownReturnsOnASignalAndTheServerStopsCleanly(string signal)
    {
        await using WorkerProcess process = await WorkerProcess.StartAsync("--http-serve", "wait");
        string address = process.Output.First(l => l.StartsWith("READY ", StringComparison.Ordinal)).Split(' ')[2];
        await using (IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(new Uri(address)))
        {
            Assert.Equal(process.Pid, await client.CallAsync<int>("work.pid"));
        }

        using (Process kill = Process.Start("kill", [$"-{signal}", process.Pid.ToString()])) await kill.WaitForExitAsync();
        Assert.Equal(0, await process.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("stopped", process.Output);
    }

    [Fact]
    public async Task AProgramThatNeverAsksStillEndsOnCtrlC()
    {
        await using WorkerProcess process = await WorkerProcess.StartAsync("--http-serve", "forever");
        using (Process kill = Process.Start("kill", ["-INT", process.Pid.ToString()])) await kill.WaitForExitAsync();
        int code = await process.WaitForExitAsync(TimeSpan.FromSeconds(20)); // it ends: the server did not swallow the signal
        Assert.NotEqual(0, code);
        Assert.DoesNotContain("stopped", process.Output);
    }
}
