using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using IpyRpc;
using IpyRpc.Http;
using IpyRpc.Jobs;
using IpyRpc.Redis;
using Workers;

// dotnet run --project samples/Workers                     the whole tour: a private redis-server, two
//                                                           worker processes, a server, a client that leaves
// dotnet run --project samples/Workers -- --redis HOST:PORT the same against a Redis you run
// dotnet run --project samples/Workers -- worker --redis HOST:PORT     one worker, until Ctrl+C / SIGTERM
// dotnet run --project samples/Workers -- serve --redis HOST:PORT [--http URL]   the server, until Ctrl+C
string? redis = Option(args, "--redis");
switch (args.FirstOrDefault())
{
    case "worker":
    {
        // The queue says when Redis goes out of reach and when it is back; the worker's take simply waits meanwhile.
        await using RedisJobQueue queue = await RedisJobQueue.ConnectAsync(redis ?? "127.0.0.1:6379", new RedisJobQueueOptions { Name = "simulations", Logger = new ConsoleLog() });
        await using var worker = new IpyRpcWorker(queue, new IpyRpcWorkerOptions { Concurrency = 4, LeaseDuration = TimeSpan.FromSeconds(5) });
        worker.Register(typeof(Simulation)).Start();
        Console.WriteLine($"worker {Environment.ProcessId} ready ({worker.Id})");
        await worker.RunUntilStoppedAsync();
        return 0;
    }

    case "serve":
    {
        await using RedisJobQueue queue = await RedisJobQueue.ConnectAsync(redis ?? "127.0.0.1:6379", new RedisJobQueueOptions { Name = "simulations" });
        await using IpyRpcServer serving = CreateServer(queue);
        await using IpyRpcHttpServer listening = await IpyRpcHttpServer.StartAsync(serving, Option(args, "--http") ?? "http://127.0.0.1:7778");
        Console.WriteLine($"serving on {listening.Address}; jobs go to Redis at {redis ?? "127.0.0.1:6379"}. Ctrl+C stops.");
        var stop = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.TrySetResult(); };
        await stop.Task;
        return 0;
    }
}

// The tour. Redis first: ours, unless one was given.
await using PrivateRedis? ownRedis = redis is null ? await PrivateRedis.StartAsync() : null;
redis ??= ownRedis!.Configuration;
Heading($"Redis at {redis}; starting two worker processes");
await using ChildProcess workerA = await ChildProcess.StartAsync("worker", "--redis", redis);
await using ChildProcess workerB = await ChildProcess.StartAsync("worker", "--redis", redis);

// The server takes calls and runs none itself: the workers do.
await using RedisJobQueue serverQueue = await RedisJobQueue.ConnectAsync(redis, new RedisJobQueueOptions { Name = "simulations" });
await using IpyRpcServer server = CreateServer(serverQueue);
await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
Console.WriteLine($"Server on {host.Address} (Concurrency 0: it only queues).");

Heading("Short calls spread over both workers");
await using (IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address))
{
    SimulationClient sim = client.Proxy<SimulationClient>();
    foreach (string line in await Task.WhenAll(Enumerable.Range(1, 6).Select(i => sim.Square(i))))
    {
        Console.WriteLine("  " + line);
    }
}

Heading("A long job: submit it, watch a little, leave");
string jobId;
await using (IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, new IpyRpcClientOptions { Output = (_, text) => Console.Write("  live: " + text) }))
{
    IpyRpcJob<string> job = await client.SubmitAsync(() => client.Proxy<SimulationClient>().Simulate(12));
    jobId = job.Id;
    Console.WriteLine($"submitted job {job.Id} ({job.State})");
    try
    {
        await job.WaitAsync(TimeSpan.FromSeconds(1.5));
    }
    catch (TimeoutException)
    {
        Console.WriteLine("... enough watching: this client disconnects. The job runs on.");
    }
}

await Task.Delay(TimeSpan.FromSeconds(2));
Heading($"Back two seconds later, on a new connection: attach to job {jobId}");
await using (IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(host.Address, new IpyRpcClientOptions { Output = (_, text) => Console.Write("  " + text) }))
{
    JobInfo info = await client.GetJobAsync(jobId);
    Console.WriteLine($"job {info.Id}: {info.State}, started {info.StartedAt:HH:mm:ss} on {info.Worker}, attempt {info.Attempts}");
    IpyRpcJob<string> job = await client.AttachAsync<string>(jobId);
    Console.WriteLine("its output so far is replayed, then the rest arrives live:");
    string result = await job;
    Console.WriteLine($"result: {result}");

    Heading("A stream as a job: a trajectory computed on a worker, read as it goes and again later");
    IpyRpcJob<long> trajectory = await client.SubmitStreamAsync(() => client.Proxy<SimulationClient>().Trajectory(10));
    var first = new List<double>();
    await foreach (double energy in trajectory.ReadItemsAsync<double>())
    {
        first.Add(energy);
        if (first.Count == 3) break; // this reading stops; the job goes on
    }

    Console.WriteLine($"first points, live: {string.Join(", ", first.Select(e => e.ToString("F4")))}");
    Console.WriteLine($"the job made {await trajectory} points");
    List<double> all = await trajectory.ReadItemsAsync<double>().ToListAsync();
    Console.WriteLine($"all {all.Count} points again, from the job's record: the last {all[^1]:F4}");

    Heading("Every job the queue remembers");
    foreach (JobInfo j in await client.ListJobsAsync())
    {
        Console.WriteLine($"  {j.Id,-16} {j.Function,-9} {j.State,-9} attempts {j.Attempts} on {j.Worker}");
    }
}

Heading("Stopping the workers (SIGTERM: they finish what they run, then exit)");
return 0;

static IpyRpcServer CreateServer(IJobQueue queue)
{
    var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = 0 });
    server.Register(typeof(Simulation));
    return server;
}

static void Heading(string text)
{
    Console.WriteLine();
    Console.WriteLine("== " + text);
}

static string? Option(string[] args, string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

/// <summary>This program again, in a process of its own (a worker), stopped with SIGTERM.</summary>
/// <summary>Writes what the queue has to say (Redis out of reach, and back) to the console, one line each.</summary>
internal sealed class ConsoleLog : Microsoft.Extensions.Logging.ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;

    public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (IsEnabled(logLevel)) Console.WriteLine($"[{logLevel}] {formatter(state, exception)}");
    }
}

internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ChildProcess(Process process) => _process = process;

    public static async Task<ChildProcess> StartAsync(params string[] args)
    {
        // Run as we were run: the apphost directly, or "dotnet Workers.dll".
        string self = Environment.ProcessPath!;
        var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(ChildProcess).Assembly.Location);
        foreach (string a in args) start.ArgumentList.Add(a);
        var child = new ChildProcess(Process.Start(start)!);
        string? line = await child._process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Console.WriteLine("  " + line);
        _ = child._process.StandardOutput.ReadToEndAsync(); // keep its pipe drained
        return child;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (Process kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) await kill.WaitForExitAsync();
            if (!_process.WaitForExit(TimeSpan.FromSeconds(15))) _process.Kill();
        }

        Console.WriteLine($"  worker {_process.Id} exited with {_process.ExitCode}");
        _process.Dispose();
    }
}

/// <summary>A redis-server of the sample's own: a free loopback port, a temporary folder, append-only persistence.</summary>
internal sealed class PrivateRedis : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _folder;

    private PrivateRedis(Process process, string folder, int port)
    {
        _process = process;
        _folder = folder;
        Configuration = $"127.0.0.1:{port}";
    }

    public string Configuration { get; }

    public static async Task<PrivateRedis> StartAsync()
    {
        string? executable = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server" }.FirstOrDefault(File.Exists);
        if (executable is null)
        {
            throw new InvalidOperationException("This sample needs redis-server (Debian/Ubuntu: apt-get install redis-server), or --redis HOST:PORT for a Redis you run.");
        }

        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        string folder = Directory.CreateTempSubdirectory("ipyrpc-workers-sample-").FullName;
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--dir", folder, "--appendonly", "yes", "--save", "" }) start.ArgumentList.Add(a);
        Process process = Process.Start(start)!;
        while (await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
        {
            if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
            {
                _ = process.StandardOutput.ReadToEndAsync();
                return new PrivateRedis(process, folder, port);
            }
        }

        throw new InvalidOperationException("redis-server exited before it was ready.");
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
        Directory.Delete(_folder, recursive: true);
        return default;
    }
}
