using System.Diagnostics;
using IpyRpc;
using IpyRpc.Jobs;
using IpyRpc.ZeroMq;
using Pointers;

// dotnet run --project samples/Pointers               the tour: a worker process computes a large array and keeps it;
//                                                      the client slices 10 rows from the worker and feeds the pointer on
// dotnet run --project samples/Pointers -- worker --sqlite PATH [--data tcp://0.0.0.0:5601]   one worker, until Ctrl+C
if (args is ["worker", "--sqlite", string path, ..])
{
    await using var queue = new SqliteJobQueue(path);
    await using var running = new IpyRpcWorker(queue);
    running.Register(typeof(Analysis)).Start();
    // The worker serves the values it keeps over ZeroMQ: pointers it returns carry this address.
    string data = args.SkipWhile(a => a != "--data").Skip(1).FirstOrDefault() ?? "tcp://127.0.0.1:*";
    await using IpyRpcZeroMqServer dataHost = IpyRpcZeroMqServer.Start(running.DataServer, data);
    Console.WriteLine($"worker {Environment.ProcessId} ready; its values are served at {dataHost.Endpoint}");
    await running.RunUntilStoppedAsync();
    return 0;
}

string folder = Directory.CreateTempSubdirectory("ipyrpc-pointers-sample-").FullName;
string jobs = Path.Combine(folder, "jobs.db");
Heading("A worker process, and a server that only queues (SQLite)");
using Process worker = StartWorker(jobs);
await using var serverQueue = new SqliteJobQueue(jobs);
await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = serverQueue, Concurrency = 0 });
server.Register(typeof(Analysis));
await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
Console.WriteLine($"server at {host.Endpoint}");

await using IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { Output = (_, text) => Console.Write("  remote: " + text) });
AnalysisClient.AnalysisNamespace analysis = client.Proxy<AnalysisClient>().Analysis;

Heading("Compute 1,000,000 × 8 doubles on the worker; keep them there");
RemotePointer<double[,]> walks = await client.AsPointerAsync(() => analysis.Simulate(1_000_000, 8, options: new CallOptions { PointerTimeToLive = TimeSpan.FromMinutes(10) }));
Console.WriteLine($"pointer: {walks}");
Console.WriteLine($"  expires {walks.ExpiresAt:HH:mm:ss}; the server holds {server.Data.Count} values");

Heading("The first 10 rows, fetched straight from the worker");
double[,] head = await client.FetchAsync(walks, 0, 10);
for (int i = 0; i < head.GetLength(0); i++)
{
    Console.WriteLine("  " + string.Join(" ", Enumerable.Range(0, head.GetLength(1)).Select(j => head[i, j].ToString("+0.000;-0.000"))));
}

Console.WriteLine($"fetched {client.PointerBytesFetched:N0} bytes of the array's {walks.Bytes:N0}");

Heading("The pointer as the argument of a second call: resolved on the worker, no bytes moved");
double[] means = await analysis.ColumnMeans(walks);
Console.WriteLine("column means: " + string.Join(" ", means.Select(m => m.ToString("+0.000;-0.000"))));
Console.WriteLine($"the client received {client.BytesReceived:N0} bytes from the server in all");

Heading("A function that reads only the rows it needs: it takes the pointer, and fetches rows itself");
double[] window = await analysis.WindowMeans(walks, 500_000, 500_100);
Console.WriteLine("window means: " + string.Join(" ", window.Select(m => m.ToString("+0.000;-0.000"))));

await client.ReleaseAsync(walks);
try
{
    await client.FetchAsync(walks, 0, 1);
}
catch (IpyRpcPointerException e)
{
    Console.WriteLine($"after release: {e.Code}");
}

Heading("Stopping the worker");
Process.Start("kill", ["-TERM", worker.Id.ToString()])!.WaitForExit();
worker.WaitForExit(TimeSpan.FromSeconds(15));
Console.WriteLine($"worker exited with {worker.ExitCode}");
return 0;

static Process StartWorker(string jobs)
{
    // Run as we were run: the apphost directly, or "dotnet Pointers.dll".
    string self = Environment.ProcessPath!;
    var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(self) == "dotnet") start.ArgumentList.Add(typeof(Analysis).Assembly.Location);
    foreach (string a in new[] { "worker", "--sqlite", jobs }) start.ArgumentList.Add(a);
    Process process = Process.Start(start)!;
    string? ready = process.StandardOutput.ReadLine();
    Console.WriteLine("  " + ready);
    _ = Task.Run(async () =>
    {
        // What the worker prints (its functions' output) shows here, marked as its own.
        while (await process.StandardOutput.ReadLineAsync() is { } line) Console.WriteLine("  worker: " + line);
    });
    return process;
}

static void Heading(string text)
{
    Console.WriteLine();
    Console.WriteLine("== " + text);
}
