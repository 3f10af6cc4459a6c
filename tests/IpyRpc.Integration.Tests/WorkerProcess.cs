using System.Diagnostics;

namespace IpyRpc.Integration.Tests;

/// <summary>A worker in a process of its own (tests/IpyRpc.TestWorker), ready once it prints READY.</summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private WorkerProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    /// <summary>Whether the process has ended (killed, or failed).</summary>
    public bool HasExited => _process.HasExited;

    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_output) return [.. _output];
        }
    }

    public static async Task<WorkerProcess> StartAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "IpyRpc.TestWorker.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        var worker = new WorkerProcess(Process.Start(start)!);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker._process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (worker._output) worker._output.Add(e.Data);
            if (e.Data.StartsWith("READY ", StringComparison.Ordinal)) ready.TrySetResult();
        };
        worker._process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (worker._output) worker._output.Add("stderr: " + e.Data);
        };
        worker._process.EnableRaisingEvents = true;
        worker._process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException("The worker exited before it was ready: " + string.Join("\n", worker.Output)));
        worker._process.BeginOutputReadLine();
        worker._process.BeginErrorReadLine();
        await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return worker;
    }

    /// <summary>Waits for the process to end by itself and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        await _process.WaitForExitAsync().WaitAsync(timeout);
        _process.WaitForExit(); // the output is read to its end
        return _process.ExitCode;
    }

    /// <summary>kill -9: no chance to hand anything back.</summary>
    public void Kill()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
    }

    /// <summary>SIGTERM: the worker drains and exits by itself.</summary>
    public async Task<int> TerminateAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", Pid.ToString()])) await kill.WaitForExitAsync();
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return _process.ExitCode;
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process.Dispose();
        return default;
    }
}
