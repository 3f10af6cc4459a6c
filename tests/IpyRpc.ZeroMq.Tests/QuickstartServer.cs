using System.Diagnostics;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>The Quickstart sample serving over ZeroMQ in a process of its own, so a test can kill it.</summary>
internal static class QuickstartServer
{
    public static async Task<Process> StartAsync(string endpoint)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Quickstart.dll"));
        foreach (string a in new[] { "serve", "--zmq", endpoint }) start.ArgumentList.Add(a);
        Process process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("Press Ctrl+C", StringComparison.Ordinal)) return process; // ready, by its own signal
        }

        throw new InvalidOperationException("The Quickstart server exited before it was ready.");
    }
}
