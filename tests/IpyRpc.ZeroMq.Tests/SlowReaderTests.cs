using System.Diagnostics;
using System.Text.RegularExpressions;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>Functions that talk while they work.</summary>
public static class Talkers
{
    /// <summary>Prints <paramref name="lines"/> lines, 5 ms apart, and returns how many.</summary>
    /// <param name="lines">How many lines.</param>
    [IpyRpcExport("slow.talk")]
    public static async Task<int> Talk(int lines)
    {
        for (int i = 0; i < lines; i++)
        {
            Console.WriteLine($"line {i} of a talk that goes on for a while, long enough to fill buffers faster");
            await Task.Delay(5);
        }

        return lines;
    }
}

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
}
