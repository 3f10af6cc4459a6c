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

    [Fact]
    public async Task SigtermToTheQuickstartServerLetsARunningCallFinish()
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }

        string endpoint = $"tcp://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "Quickstart.dll"), "serve", "--zmq", endpoint }) start.ArgumentList.Add(a);
        using Process server = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.Contains("Press Ctrl+C", StringComparison.Ordinal)) ready.TrySetResult();
        };
        server.BeginOutputReadLine();
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
            var firstLine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using IpyRpcClient client = await IpyRpc.ZeroMq.IpyRpcZeroMqClient.ConnectAsync(endpoint, new IpyRpcClientOptions { Output = (_, _) => firstLine.TrySetResult(), Reconnect = null });
            Task<int> call = client.CallAsync<int>("print_lines", 5); // 1.5 s
            await firstLine.Task.WaitAsync(TimeSpan.FromSeconds(20));
            using (Process kill = Process.Start("kill", ["-TERM", server.Id.ToString()])) await kill.WaitForExitAsync();

            Assert.Equal(5, await call.WaitAsync(TimeSpan.FromSeconds(20))); // finished, not cancelled
            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
            server.WaitForExit();
            Assert.Equal(0, server.ExitCode);
            lock (output) Assert.Contains("Stopped.", output.ToString());
        }
        finally
        {
            if (!server.HasExited) server.Kill();
        }
    }
}
