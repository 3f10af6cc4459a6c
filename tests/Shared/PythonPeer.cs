using System.Diagnostics;

namespace IpyRpc.Tests;

/// <summary>Runs Debian's python3 (which sees python3-msgpack and python3-zmq) on a script in tests' python folder.</summary>
internal static class PythonPeer
{
    public const string Interpreter = "/usr/bin/python3";

    public static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string script, params string[] args) => RunAsync(TimeSpan.FromSeconds(60), script, args);

    /// <summary>Runs <paramref name="script"/>, killing it if it is still running after <paramref name="timeout"/>.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(TimeSpan timeout, string script, params string[] args)
    {
        Assert.True(File.Exists(Interpreter), "Debian's /usr/bin/python3 is required (apt-get install python3 python3-msgpack python3-zmq)");
        var start = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "python", script));
        foreach (string a in args) start.ArgumentList.Add(a);
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var giveUp = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(giveUp.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
