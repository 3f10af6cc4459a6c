using System.Diagnostics;

namespace IpyRpc.Tests;

/// <summary>
/// A real redis-server (Debian's package) on a free loopback port, with a data folder of its own
/// and append-only persistence, started for a test and stopped after it. Ready once it logs that
/// it accepts connections.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    public const string Executable = "/usr/bin/redis-server";
    private Process? _process;

    private RedisServer(int port, string folder)
    {
        Port = port;
        Folder = folder;
    }

    public int Port { get; }

    public string Folder { get; }

    /// <summary>The StackExchange.Redis configuration string for this server.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        Assert.True(File.Exists(Executable), "redis-server is required for these tests (apt-get install redis-server); .ci/run installs it");
        var server = new RedisServer(LoopbackPorts.Free(), Directory.CreateTempSubdirectory("ipyrpc-redis-").FullName);
        await server.RunAsync();
        return server;
    }

    private async Task RunAsync()
    {
        var start = new ProcessStartInfo(Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[]
        {
            "--port", Port.ToString(), "--bind", "127.0.0.1", "--dir", Folder, "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no", "--protected-mode", "yes",
        })
        {
            start.ArgumentList.Add(a);
        }

        Process process = Process.Start(start)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            if (e.Data.Contains("Ready to accept connections", StringComparison.Ordinal)) ready.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (log) log.AppendLine(e.Data);
        };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException("redis-server exited: " + log));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>Kills the server (SIGKILL, as a crash) and starts it again on the same port and folder: it reloads its append-only file.</summary>
    public async Task RestartAsync()
    {
        Kill();
        await RunAsync();
    }

    /// <summary>Starts the server again after <see cref="Kill"/>, on the same port and folder: it reloads its append-only file.</summary>
    public Task StartAgainAsync() => RunAsync();

    /// <summary>Kills the server (SIGKILL, as a crash); its folder stays.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit();
        }

        _process?.Dispose();
        _process = null;
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }

        return default;
    }
}
