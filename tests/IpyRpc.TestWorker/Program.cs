using IpyRpc;
using IpyRpc.Jobs;
using IpyRpc.Redis;
using IpyRpc.TestWorker;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// A worker process for the integration tests:
//   IpyRpc.TestWorker (--redis CONFIG | --sqlite PATH) [--queue NAME] [--concurrency N] [--lease-ms N] [--data ENDPOINT]
// (--data: serve the values its jobs return as pointers over ZeroMQ at ENDPOINT; prints "DATA <bound endpoint>" before READY;
//  --data-http URL: over HTTP too, printing "DATA-HTTP <address>")
//   IpyRpc.TestWorker --client-zmq ENDPOINT | --client-ws URL
// Prints "READY <pid>" once it takes jobs (or, as a client exporting WorkFunctions, once connected);
// stops gracefully on SIGTERM, dies at once on SIGKILL.
//   IpyRpc.TestWorker --host ENDPOINT
// A Generic Host app: services.AddIpyRpc() serving ZeroMQ at ENDPOINT, settings from configuration,
// DiFunctions resolved per call; stops gracefully on SIGTERM, printing "stopped".
if (args is ["--host", string hostEndpoint])
{
    Microsoft.Extensions.Hosting.HostApplicationBuilder builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
    builder.Logging.ClearProviders();
    builder.Configuration["IpyRpc:ZeroMq:0"] = hostEndpoint;
    builder.Configuration["IpyRpc:ShutdownTimeout"] = "00:00:10";
    builder.Configuration["IpyRpc:Functions:work.wait_for_cancel:Timeout"] = "00:00:00.300";
    builder.Services.AddSingleton<ScopeCounter>();
    builder.Services.AddIpyRpc().Export(typeof(WorkFunctions)).Export<DiFunctions>();
    builder.Services.AddScoped<PerCall>();
    using Microsoft.Extensions.Hosting.IHost app = builder.Build();
    await app.StartAsync();
    Console.WriteLine("READY " + Environment.ProcessId);
    await app.WaitForShutdownAsync();
    Console.WriteLine("stopped");
    return 0;
}

//   IpyRpc.TestWorker --http-serve (wait | forever)
// An HTTP server: "wait" serves until WaitForShutdownAsync sees a signal, then disposes and prints
// "stopped"; "forever" never looks at signals (the process must still end on them).
if (args is ["--http-serve", string mode])
{
    await using var server = new IpyRpcServer();
    server.Register(typeof(WorkFunctions));
    await using IpyRpc.Http.IpyRpcHttpServer host = await IpyRpc.Http.IpyRpcHttpServer.StartAsync(server);
    Console.WriteLine("READY " + Environment.ProcessId + " " + host.Address);
    if (mode == "forever") await Task.Delay(Timeout.Infinite);
    await host.WaitForShutdownAsync();
    Console.WriteLine("stopping");
    await host.DisposeAsync();
    Console.WriteLine("stopped");
    return 0;
}

if (args is ["--client-zmq" or "--client-ws", string address])
{
    var options = new IpyRpcClientOptions { Exports = [typeof(WorkFunctions)], Reconnect = null };
    await using IpyRpcClient client = args[0] == "--client-zmq"
        ? await IpyRpc.ZeroMq.IpyRpcZeroMqClient.ConnectAsync(address, options)
        : await IpyRpc.Http.IpyRpcHttpClient.ConnectAsync(new Uri(address), IpyRpc.Http.HttpCarrier.WebSocket, options);
    var gone = new TaskCompletionSource();
    client.Disconnected += _ => gone.TrySetResult();
    Console.WriteLine("READY " + Environment.ProcessId);
    await gone.Task;
    return 0;
}

string? redis = null, sqlite = null, queueName = null, data = null, dataHttp = null;
int concurrency = 4, leaseMs = 1000;
for (int i = 0; i + 1 < args.Length; i += 2)
{
    switch (args[i])
    {
        case "--redis": redis = args[i + 1]; break;
        case "--sqlite": sqlite = args[i + 1]; break;
        case "--queue": queueName = args[i + 1]; break;
        case "--concurrency": concurrency = int.Parse(args[i + 1]); break;
        case "--lease-ms": leaseMs = int.Parse(args[i + 1]); break;
        case "--data": data = args[i + 1]; break;
        case "--data-http": dataHttp = args[i + 1]; break;
        default: Console.Error.WriteLine("unknown option " + args[i]); return 2;
    }
}

await using IJobQueue queue = redis is not null
    ? await RedisJobQueue.ConnectAsync(redis, new RedisJobQueueOptions { Name = queueName ?? "redis" })
    : new SqliteJobQueue(sqlite ?? throw new ArgumentException("--redis or --sqlite is required"), new SqliteJobQueueOptions { Name = queueName ?? "sqlite" });
await using var worker = new IpyRpcWorker(queue, new IpyRpcWorkerOptions
{
    Concurrency = concurrency,
    LeaseDuration = TimeSpan.FromMilliseconds(leaseMs),
    ShutdownTimeout = TimeSpan.FromSeconds(5),
    WorkerId = "test-worker-" + Environment.ProcessId,
});
worker.Register(typeof(WorkFunctions)).Register(typeof(IpyRpc.Tests.Pointers.PointerFunctions)).Start();
await using IpyRpc.ZeroMq.IpyRpcZeroMqServer? dataHost = data is null ? null : IpyRpc.ZeroMq.IpyRpcZeroMqServer.Start(worker.DataServer, data);
if (dataHost is not null) Console.WriteLine("DATA " + dataHost.Endpoint);
await using IpyRpc.Http.IpyRpcHttpServer? dataHttpHost = dataHttp is null ? null : await IpyRpc.Http.IpyRpcHttpServer.StartAsync(worker.DataServer, dataHttp);
if (dataHttpHost is not null) Console.WriteLine("DATA-HTTP " + dataHttpHost.Address);
Console.WriteLine("READY " + Environment.ProcessId);
await worker.RunUntilStoppedAsync();
return 0;
