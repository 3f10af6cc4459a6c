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

    [Fact]
    public async Task ConfigureServerSetsWhatConfigurationCannotCarry()
    {
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration["IpyRpc:Concurrency"] = "5";
        var queue = new IpyRpc.Jobs.InMemoryJobQueue(new IpyRpc.Jobs.InMemoryJobQueueOptions { Name = "from-services" });
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton<IpyRpc.Jobs.IJobQueue>(builder.Services, queue);
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services)
            .Export(typeof(IpyRpc.TestWorker.WorkFunctions))
            .ConfigureServer((options, services) => options with { Queue = (IpyRpc.Jobs.IJobQueue)services.GetService(typeof(IpyRpc.Jobs.IJobQueue))! });
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        var server = (IpyRpcServer)host.Services.GetService(typeof(IpyRpcServer))!;
        Assert.Equal(5, server.Options.Concurrency);        // from configuration
        Assert.Same(queue, server.Queue);                    // from ConfigureServer
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        Assert.Equal(9L, await client.CallAsync<long>("work.square", 3L));
        await server.DisposeAsync();
    }

    [Fact]
    public async Task PointerSettingsComeFromConfigurationToo()
    {
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration["IpyRpc:Functions:ptr.*:ReturnPointer"] = "true";
        builder.Configuration["IpyRpc:Functions:ptr.*:PointerTimeToLive"] = "00:02:00";
        builder.Configuration["IpyRpc:TrustedHolders:0"] = "zmq://10.0.0.*:5601";
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services).Export(typeof(IpyRpc.Tests.Pointers.PointerFunctions));
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        var server = (IpyRpcServer)host.Services.GetService(typeof(IpyRpcServer))!;
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        var pointer = Assert.IsAssignableFrom<RemotePointer>(await client.CallAsync("ptr.range", 4));
        Assert.InRange(pointer.ExpiresAt!.Value - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1.9), TimeSpan.FromMinutes(2));
        Assert.Equal([0, 1, 2, 3], await client.FetchAsync(pointer.As<List<int>>()));
        Assert.Equal(["zmq://10.0.0.*:5601"], server.Options.TrustedHolders);
        await server.DisposeAsync();
    }

    [Fact]
    public async Task InlineComesFromConfiguration()
    {
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration["IpyRpc:Functions:work.square:Inline"] = "true";
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services).Export(typeof(IpyRpc.TestWorker.WorkFunctions));
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        var server = (IpyRpcServer)host.Services.GetService(typeof(IpyRpcServer))!;
        Assert.True(server.OptionsFor("work.square").Inline);
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        Assert.Equal(16L, await client.CallAsync<long>("work.square", 4L));
        IpyRpc.Jobs.JobInfo job = Assert.Single(await client.ListJobsAsync(new IpyRpc.Jobs.JobQuery { Function = "work.square" }));
        Assert.EndsWith(":inline", job.Worker); // run by the thread that received the call
        await server.DisposeAsync();
    }

    [Fact]
    public async Task AnExportedServiceTheContainerCannotCreateFailsTheStartRatherThanEveryCall()
    {
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services).Export<IpyRpc.TestWorker.NeedsUnregistered>();
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => host.StartAsync());
        Assert.Contains("NeedsUnregistered is exported with Export<NeedsUnregistered>(), but no call could create it: its constructor needs Unregistered (parameter 'dependency')", e.Message);

        // Made by a factory of the app's own, it is the app's to make: the server starts, and calls create it so.
        Microsoft.Extensions.Hosting.HostApplicationBuilder own = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddScoped(own.Services, _ => new IpyRpc.TestWorker.NeedsUnregistered(null!));
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(own.Services).Export<IpyRpc.TestWorker.NeedsUnregistered>();
        using Microsoft.Extensions.Hosting.IHost started = own.Build();
        await started.StartAsync();
        var server = (IpyRpcServer)started.Services.GetService(typeof(IpyRpcServer))!;
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        Assert.Equal("made without it", await client.CallAsync<string>("di.needs_unregistered"));
        await started.StopAsync();
    }

    [Fact]
    public void AConfiguredValueThatCouldNeverWorkFailsTheStartNamingItsPlace()
    {
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration["IpyRpc:Functions:work.*:Timeout"] = "00:00:00";
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services).Export(typeof(IpyRpc.TestWorker.WorkFunctions));
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        var e = Assert.Throws<InvalidOperationException>(() => host.Services.GetService(typeof(IpyRpcServer)));
        Assert.Contains("IpyRpc:Functions:work.*: Timeout must be positive, or \"infinite\" for none; not \"00:00:00\".", e.Message);

        Microsoft.Extensions.Hosting.HostApplicationBuilder garbled = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        garbled.Configuration["IpyRpc:Functions:work.*:PointerTimeToLive"] = "5 minutes";
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(garbled.Services).Export(typeof(IpyRpc.TestWorker.WorkFunctions));
        using Microsoft.Extensions.Hosting.IHost second = garbled.Build();
        e = Assert.Throws<InvalidOperationException>(() => second.Services.GetService(typeof(IpyRpcServer)));
        Assert.Contains("IpyRpc:Functions:work.*: PointerTimeToLive is a duration such as \"00:05:00\" (hh:mm:ss) or \"1.00:00:00\" (a day), or \"infinite\"; not \"5 minutes\".", e.Message);
    }

    [Fact]
    public void AnInfiniteTimeoutIsWrittenAsInfiniteAndLiftsAWiderPatternsLimit()
    {
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration["IpyRpc:Functions:work.*:Timeout"] = "00:00:05";
        builder.Configuration["IpyRpc:Functions:work.slow:Timeout"] = "Infinite";
        builder.Configuration["IpyRpc:Functions:work.square:PointerTimeToLive"] = "infinite";
        builder.Configuration["IpyRpc:Functions:work.pid:Timeout"] = "1.00:00:00";
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services).Export(typeof(IpyRpc.TestWorker.WorkFunctions));
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        var server = (IpyRpcServer)host.Services.GetService(typeof(IpyRpcServer))!;
        Assert.Equal(Timeout.InfiniteTimeSpan, server.OptionsFor("work.slow").Timeout);
        Assert.Equal(TimeSpan.FromSeconds(5), server.OptionsFor("work.square").Timeout);
        Assert.Equal(Timeout.InfiniteTimeSpan, server.OptionsFor("work.square").PointerTimeToLive);
        Assert.Equal(TimeSpan.FromDays(1), server.OptionsFor("work.pid").Timeout);
    }

    [Fact]
    public void AConfigurationPatternThatMatchesNoFunctionIsLoggedAsLikelyATypo()
    {
        var log = new IpyRpc.Tests.ListLogger();
        Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration["IpyRpc:Functions:work.square:Timeout"] = "00:00:05";
        builder.Configuration["IpyRpc:Functions:wrok.*:Timeout"] = "00:00:05";
        builder.Logging.Services.Add(Microsoft.Extensions.DependencyInjection.ServiceDescriptor.Singleton<Microsoft.Extensions.Logging.ILoggerProvider>(log));
        Microsoft.Extensions.DependencyInjection.IpyRpcServiceCollectionExtensions.AddIpyRpc(builder.Services).Export(typeof(IpyRpc.TestWorker.WorkFunctions));
        using Microsoft.Extensions.Hosting.IHost host = builder.Build();
        _ = host.Services.GetService(typeof(IpyRpcServer));

        (Microsoft.Extensions.Logging.LogLevel level, string message, _) = Assert.Single(log.Entries, e => e.Message.Contains("matches none"));
        Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, level);
        Assert.Contains("IpyRpc:Functions pattern 'wrok.*' matches none of the exported functions or events (work.gated, work.gated_stream, work.pid", message);
        Assert.DoesNotContain("'work.square'", string.Join("\n", log.Entries.Select(e => e.Message)));
    }
}
