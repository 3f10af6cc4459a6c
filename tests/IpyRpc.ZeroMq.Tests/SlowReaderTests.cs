using System.Diagnostics;
using System.Text.RegularExpressions;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>
/// A client that is alive but stops reading (its process is stopped) while calls stream output to
/// it is not dropped, and loses nothing: the server waits for it and tells a slow reader from a dead peer.
/// </summary>
public sealed class SlowReaderTests
{
    [Fact]
    public async Task AClientThatStopsReadingForLongerThanTheHeartbeatTimeoutIsKeptAndLosesNothing()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 100 });
        server.Register(typeof(Talkers));
        var disconnects = new List<DisconnectInfo>();
        server.ClientDisconnected += (_, info) =>
        {
            lock (disconnects) disconnects.Add(info);
        };

        // A short heartbeat, so the test is short: the client stays stopped for four heartbeat timeouts.
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*",
            new ZeroMqOptions { HeartbeatInterval = TimeSpan.FromMilliseconds(200), HeartbeatTimeout = TimeSpan.FromSeconds(1) });

        Assert.True(File.Exists(PythonPeer.Interpreter));
        var start = new ProcessStartInfo(PythonPeer.Interpreter) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "python", "slow_reader.py"), host.Endpoint, "60", "100" }) start.ArgumentList.Add(a);
        using Process peer = Process.Start(start)!;
        using var cleanup = new KillOnFailure(peer);
        Task<string> errors = peer.StandardError.ReadToEndAsync();
        string? sent = await peer.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.StartsWith("SENT", sent);

        // Wait until it has really stopped (state T), then keep it stopped while the calls talk.
        for (int i = 0; i < 100 && !File.ReadAllText($"/proc/{peer.Id}/stat").Split(' ')[2].StartsWith('T'); i++) await Task.Delay(20);
        await Task.Delay(TimeSpan.FromSeconds(4));
        using (Process resume = Process.Start("kill", ["-CONT", peer.Id.ToString()])!) await resume.WaitForExitAsync();

        string report = await peer.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await peer.WaitForExitAsync();
        Assert.True(peer.ExitCode == 0, report + await errors);
        Match m = Regex.Match(report, @"results (\d+) output (\d+) errors \[(.*)\] closed (\w+)");
        Assert.True(m.Success, report);
        Assert.Equal(("60", "6000", "", "False"), (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value, m.Groups[4].Value));
        lock (disconnects) Assert.Empty(disconnects);
    }

    [Theory]
    [InlineData("slow.flood")]
    [InlineData("slow.flood_progress")]
    public async Task AFunctionPrintingToAStoppedReaderIsSlowedToItsPaceAndLosesNothing(string function)
    {
        // 30 MB of output: more than every buffer between the function and the stopped reader can hold (libzmq's
        // queues of 100 messages on each side, the kernel's socket buffers, and the 256 KiB the server lets wait).
        const int lines = 30_000;
        Volatile.Write(ref Talkers.Flooded, 0);
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxBufferedOutputBytesPerCall = 256 * 1024 });
        server.Register(typeof(Talkers));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*", new ZeroMqOptions { HighWaterMark = 100 });

        var start = new ProcessStartInfo(PythonPeer.Interpreter) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "python", "slow_reader.py"), host.Endpoint, "1", lines.ToString(), function }) start.ArgumentList.Add(a);
        using Process peer = Process.Start(start)!;
        using var cleanup = new KillOnFailure(peer); // a stopped peer left behind would keep the test run waiting
        Task<string> errors = peer.StandardError.ReadToEndAsync();
        Assert.StartsWith("SENT", await peer.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));
        for (int i = 0; i < 100 && !File.ReadAllText($"/proc/{peer.Id}/stat").Split(' ')[2].StartsWith('T'); i++) await Task.Delay(20);

        // The function stalls: its count stops moving, short of the end, while nothing is read.
        int now = Assert.IsType<int>(await Talkers.FloodStalledAsync());
        Assert.InRange(now, 1, lines / 2);

        // Meanwhile other callers' functions print and return as usual: the stalled one holds no lock they need
        // (a line is written under the console's lock, which it lets go of while it waits).
        var heard = new List<string>();
        await using (IpyRpcClient other = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { Output = (_, t) => { lock (heard) heard.Add(t); } }))
        {
            Assert.Equal(3, await other.CallAsync<int>("slow.talk", 3).WaitAsync(TimeSpan.FromSeconds(20)));
            lock (heard) Assert.Equal(3, heard.Count);
        }

        Assert.Equal(now, Volatile.Read(ref Talkers.Flooded)); // and the stalled one is still waiting

        using (Process resume = Process.Start("kill", ["-CONT", peer.Id.ToString()])!) await resume.WaitForExitAsync();
        string report = await peer.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(120));
        await peer.WaitForExitAsync();
        Assert.True(peer.ExitCode == 0, report + await errors);
        (int printed, int reported) = function == "slow.flood" ? (lines, 0) : (0, lines);
        Assert.Equal($"results 1 output {printed} errors [] closed False progress {reported}", report.Trim());
        Assert.Equal(lines, Volatile.Read(ref Talkers.Flooded));
    }

    /// <summary>Kills a peer process that has not exited by the end of the test (one still stopped after a failed assertion).</summary>
    private sealed class KillOnFailure(Process peer) : IDisposable
    {
        public void Dispose()
        {
            if (peer.HasExited) return;
            peer.Kill(entireProcessTree: true);
            peer.WaitForExit(5000);
        }
    }
}
