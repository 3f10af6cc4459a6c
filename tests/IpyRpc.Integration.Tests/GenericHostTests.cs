using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq;

namespace IpyRpc.Integration.Tests;

/// <summary>A Generic Host app with services.AddIpyRpc() (tests/IpyRpc.TestWorker --host), as a process of its own.</summary>
public sealed class GenericHostTests
{
    private static string FreeEndpoint()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return "tcp://127.0.0.1:" + ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    [Fact]
    public async Task ServicesComeFromDependencyInjectionAScopePerCallAndGlobConfigFromConfiguration()
    {
        string endpoint = FreeEndpoint();
        await using WorkerProcess app = await WorkerProcess.StartAsync("--host", endpoint);
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(endpoint, new IpyRpcClientOptions { Output = (_, _) => { } });

        Assert.Equal("scope 1, shared True", await client.CallAsync<string>("di.scope")); // constructor injection; one scope for the call
        Assert.Equal("scope 2, shared True", await client.CallAsync<string>("di.scope")); // a new scope for the next call
        Assert.Equal(49L, await client.CallAsync<long>("work.square", 7L));

        // IpyRpc:Functions:work.wait_for_cancel:Timeout = 300 ms, from configuration.
        var timedOut = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<string>("work.wait_for_cancel"));
        Assert.Equal(ErrorCodes.Timeout, timedOut.Code);
    }

    [Fact]
    public async Task SigtermLetsARunningCallFinishThenTheProcessExits()
    {
        string endpoint = FreeEndpoint();
        await using WorkerProcess app = await WorkerProcess.StartAsync("--host", endpoint);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(endpoint, new IpyRpcClientOptions { Output = (_, _) => started.TrySetResult(), Reconnect = null });

        Task<string> call = client.CallAsync<string>("work.slow", "drain", 6, 200); // about 1.2 s
        await started.Task.WaitAsync(TimeSpan.FromSeconds(20));
        using (Process kill = Process.Start("kill", ["-TERM", app.Pid.ToString()])) await kill.WaitForExitAsync();

        Assert.Equal($"drain done by {app.Pid}", await call.WaitAsync(TimeSpan.FromSeconds(20))); // finished, not cancelled
        Assert.Equal(0, await app.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("stopped", app.Output);
    }
}
