using IpyRpc;
using IpyRpc.Bench;
using IpyRpc.ZeroMq;

// dotnet run -c Release --project bench/IpyRpc.Bench -- [--quick | --smoke] [--repeat N] [--systems a,b] [--json FILE] [scenario…]
//   --repeat N: run everything N times; each ratio is the median of the N runs' ratios (each run's value is listed)
//   --systems a,b: the small-call scenario measures only these systems (say ipyrpc-http-binary,raw-kestrel)
//   scenarios: small, payload, pointers, queues, serialization, python (default: all)
// dotnet run -c Release --project bench/IpyRpc.Bench -- serve [forget]   the server process the harness starts
// dotnet run -c Release --project bench/IpyRpc.Bench -- loop …   small calls only, for a profiler (options below)
if (args.FirstOrDefault() == "serve")
{
    return await Serve.RunAsync(forget: args.Contains("forget"), polled: args.Contains("polled"));
}

// dotnet run -c Release --project bench/IpyRpc.Bench -- worker REDIS|sqlite:PATH QUEUE   a worker process for the queues scenario
if (args.FirstOrDefault() == "worker")
{
    return await Queues.RunWorkerAsync(args[1], args[2]);
}

// dotnet run -c Release --project bench/IpyRpc.Bench -- loop [N] [zmq|rawzmq|http|ws|jsonrpc|kestrel|signalr] [remote] [inline|print] [bytes=SIZE] [allocs] [forget] [polled] [IN_FLIGHT]
//   N small calls and nothing else (in process, or over ZeroMQ tcp, HTTP requests, a WebSocket or JSON-RPC to a server in this
//   process, or the raw libzmq ping-pong, raw Kestrel echo or SignalR hub call the harness compares them with), IN_FLIGHT
//   at a time (1 by default; raw libzmq's are pipelined on one thread, as in the harness), to a function run by the queue's workers or (inline) on the receiving thread, or (print) one that prints a line each call, whose output the client drops; prints
//   calls/s, bytes allocated and thread-pool work items a call, a call's p50 and p99 (and for IpyRpc the p50 of each tenth of the run), the slowest call and this process's longest GC pause. allocs: also which types were allocated most (sampled);
//   forget: the queue keeps finished calls' records within 1 MB instead of 256 MB, to show what retention costs (with
//   remote, the server process's queue).
//   polled (with rawzmq): both raw libzmq threads wait as IpyRpc's socket threads do, in poll(2) on the
//   socket's descriptor, and look at ZMQ_EVENTS after each send; what those three system calls a cycle cost a call.
//   remote: the server is a process of its own (the harness's), as in the harness; the loop then also prints the CPU
//   time and context switches a call costs each process (Linux), which one process's counters cannot tell apart.
//   For a profiler: perf (DOTNET_PerfMapEnabled=1 perf record -g -- dotnet IpyRpc.Bench.dll loop 200000 64) sees CPU
//   as it is; dotnet-trace's sampled thread time suspends the runtime for each sample, which sends lock entries and
//   GC polls down their slow paths and inflates them (docs/PERFORMANCE.md, "Where a call's CPU goes").
// dotnet run -c Release --project bench/IpyRpc.Bench -- loop [N] redis [workers=K] [IN_FLIGHT]
//   redis: N small calls in process through a Redis queue (a redis-server of the loop's own) to K worker processes (1 by
//   default); prints calls/s and the CPU and context switches a call costs this process, each worker and redis-server.
if (args.FirstOrDefault() == "loop")
{
    int[] numbers = [.. args.Skip(1).Where(a => a is not ("zmq" or "rawzmq" or "http" or "ws" or "jsonrpc" or "kestrel" or "signalr" or "inline" or "print" or "allocs" or "forget" or "polled" or "remote" or "redis") && !a.StartsWith("workers=", StringComparison.Ordinal) && !a.StartsWith("bytes=", StringComparison.Ordinal)).Select(a => int.Parse(a, System.Globalization.CultureInfo.InvariantCulture))];
    int count = numbers.Length > 0 ? numbers[0] : 200_000;
    int inFlight = numbers.Length > 1 ? numbers[1] : 1;
    // Calls made before the clock starts: enough for the JIT to finish tiering the call path up.
    int warmUp = Math.Min(count, 20_000);
    bool zmq = args.Contains("zmq"), ws = args.Contains("ws"), http = args.Contains("http") || ws, inline = args.Contains("inline"), print = args.Contains("print");
    // bytes=N: echo a byte[] of N bytes instead of the small call
    int bytes = args.FirstOrDefault(a => a.StartsWith("bytes=", StringComparison.Ordinal)) is { } b ? int.Parse(b[6..], System.Globalization.CultureInfo.InvariantCulture) : 0;
    byte[] payload = new byte[bytes];
    // forget: the in-memory queue keeps finished calls' records within 1 MB instead of 256 MB (what retention costs)
    await using var server = new IpyRpcServer(new IpyRpcServerOptions
    {
        MaxCallsInFlightPerConnection = 1024,
        Queue = args.Contains("forget") ? Serve.ForgetfulQueue() : null,
    });
    BenchFunctions.Configure(server);
    if (args.Contains("remote") && !(zmq || http || args.Contains("jsonrpc") || args.Contains("kestrel") || args.Contains("signalr") || args.Contains("rawzmq")))
    {
        Console.Error.WriteLine("remote needs a transport to reach the server process: zmq, http, ws, jsonrpc, kestrel, signalr or rawzmq (in process is one process by definition).");
        return 2;
    }

    if (args.Contains("redis"))
    {
        // Calls through a Redis queue (a redis-server of the loop's own) to worker processes.
        int workers = args.FirstOrDefault(a => a.StartsWith("workers=", StringComparison.Ordinal)) is { } w ? int.Parse(w[8..], System.Globalization.CultureInfo.InvariantCulture) : 1;
        return await Queues.LoopAsync(count, inFlight, workers);
    }

    await using ServerProcess? remote = args.Contains("remote") ? await ServerProcess.StartAsync(forget: args.Contains("forget"), polled: args.Contains("polled")) : null;
    await using IpyRpcZeroMqServer? host = zmq && remote is null ? IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*") : null;
    await using IpyRpc.Http.IpyRpcHttpServer? web = http && remote is null ? await IpyRpc.Http.IpyRpcHttpServer.StartAsync(server) : null;
    // print: the function prints a line each call; the client drops it (printing it would time the console).
    IpyRpcClientOptions? clientOptions = print ? new IpyRpcClientOptions { Output = static (_, _) => { } } : null;
    await using IpyRpcClient client = zmq ? await IpyRpcZeroMqClient.ConnectAsync(remote?.Endpoints.ZmqTcp ?? host!.Endpoint, clientOptions)
        : http ? await IpyRpc.Http.IpyRpcHttpClient.ConnectAsync(remote is not null ? new Uri(remote.Endpoints.Http) : web!.Address, ws ? IpyRpc.Http.HttpCarrier.WebSocket : IpyRpc.Http.HttpCarrier.Requests, clientOptions)
        : await IpyRpcClient.ConnectInProcessAsync(server, clientOptions);
    BenchFunctionsClient functions = client.Proxy<BenchFunctionsClient>();
    // allocs: sample which types the calls allocate (the runtime's allocation ticks), after a warm-up
    using AllocationCensus? census = args.Contains("allocs") ? new AllocationCensus() : null;
    if (args.Contains("rawzmq"))
    {
        // The ZeroMQ floor the harness compares with: a bare ROUTER echo and a DEALER ping-pong, one call at a time, or
        // pipelining IN_FLIGHT requests on one thread.
        bool polled = args.Contains("polled");
        using RawZmq.EchoServer? echo = remote is null ? new RawZmq.EchoServer("tcp://127.0.0.1:*", polled) : null;
        await using SystemUnderTest raw = Systems.RawZeroMq(remote?.Endpoints.RawZmq ?? echo!.Endpoint, polled);
        for (int i = 0; i < warmUp; i++) await raw.SmallCall();
        await Task.Delay(500);
        (ProcessCost? self, ProcessCost? other) = (ProcessCost.Read(Environment.ProcessId), remote is null ? null : ProcessCost.Read(remote.Id));
        var timer = System.Diagnostics.Stopwatch.StartNew();
        if (inFlight > 1)
        {
            // The harness's raw floor at many in flight: one thread pipelining that many requests.
            raw.PipelinedThroughput!(inFlight, count);
        }
        else
        {
            for (int i = 0; i < count; i++) await raw.SmallCall();
        }

        Console.WriteLine($"{count} small calls (raw libzmq {(inFlight > 1 ? "pipelined" : "ping-pong")}{(polled ? ", polled" : "")}{(remote is null ? "" : ", server in its own process")}, {inFlight} in flight): {count / timer.Elapsed.TotalSeconds:0} calls/s, {timer.Elapsed.TotalMilliseconds * 1000 / count:0.0} µs each on average");
        if (raw.PollWaits is { } waits) Console.WriteLine($"  polled: the client waited in poll(2) {waits()} times");
        PrintCosts(self, remote is null ? null : (other, remote.Id), count);
        return 0;
    }

    if (args.Contains("jsonrpc") || args.Contains("kestrel") || args.Contains("signalr"))
    {
        // Plain HTTP posts, as the harness's JSON-RPC system and its raw Kestrel floor make them; or SignalR's hub call.
        await using IpyRpc.Http.IpyRpcHttpServer? rpc = remote is null ? await IpyRpc.Http.IpyRpcHttpServer.StartAsync(server) : null;
        Microsoft.AspNetCore.Builder.WebApplication? baseline = (args.Contains("kestrel") || args.Contains("signalr")) && remote is null ? await Serve.StartBaselineAsync() : null;
        string baselineAddress = remote?.Endpoints.Baseline ?? (baseline is null ? "" : Serve.BaselineAddress(baseline));
        SystemUnderTest system = args.Contains("kestrel") ? Systems.RawKestrel(baselineAddress)
            : args.Contains("signalr") ? await Systems.SignalRAsync(baselineAddress)
            : Systems.HttpJsonRpc(remote?.Endpoints.Http ?? rpc!.Address.ToString());
        // Warmed up first, so the JIT's tiering is over before the clock starts (it otherwise takes a core for seconds).
        await LanesAsync(warmUp, inFlight, system.SmallCall);
        await Task.Delay(500);
        census?.Start();

        long allocated = GC.GetTotalAllocatedBytes(), workItems = ThreadPool.CompletedWorkItemCount, contended = Monitor.LockContentionCount;
        (ProcessCost? ours, ProcessCost? theirs) = (ProcessCost.Read(Environment.ProcessId), remote is null ? null : ProcessCost.Read(remote.Id));
        using var collections = new PauseProbe();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        long[] times = await LanesAsync(count, inFlight, system.SmallCall);
        TimeSpan slowestCall = System.Diagnostics.Stopwatch.GetElapsedTime(0, times.Max());
        (double median, double tail) = Measure.Percentiles(times);
        census?.Print(count);
        Console.WriteLine($"{count} small calls ({system.Name}{(remote is null ? "" : ", server in its own process")}, {inFlight} in flight): {count / watch.Elapsed.TotalSeconds:0} calls/s, {watch.Elapsed.TotalMilliseconds * 1000 / count:0.0} µs each on average; {(GC.GetTotalAllocatedBytes() - allocated) / count} B allocated and {(ThreadPool.CompletedWorkItemCount - workItems) / (double)count:0.00} thread-pool work items and {(Monitor.LockContentionCount - contended) / (double)count:0.000} contended lock entries a call ({(remote is null ? "both sides" : "client")}), a call's p50 {median:0.0} µs and p99 {tail:0.0} µs, the slowest call {slowestCall.TotalMilliseconds:0.0} ms (the longest GC pause {collections.Longest}{(remote is null ? "" : " in this process")}), {ThreadPool.ThreadCount} pool threads, GC pauses {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms");
        PrintCosts(ours, remote is null ? null : (theirs, remote.Id), count);
        await system.DisposeAsync();
        if (baseline is not null) await baseline.DisposeAsync();
        return 0;
    }

    Func<Task> call = () => bytes > 0 ? functions.EchoBytes(payload) : inline ? functions.AddInline(2, 3) : print ? functions.AddPrint(2, 3) : functions.Add(2, 3);
    await LanesAsync(warmUp, inFlight, call);
    await Task.Delay(500);
    census?.Start();

    long before = GC.GetTotalAllocatedBytes(), items = ThreadPool.CompletedWorkItemCount, contentions = Monitor.LockContentionCount;
    (ProcessCost? mine, ProcessCost? its) = (ProcessCost.Read(Environment.ProcessId), remote is null ? null : ProcessCost.Read(remote.Id));
    using var pauses = new PauseProbe();
    var clock = System.Diagnostics.Stopwatch.StartNew();
    long[] ticks = await LanesAsync(count, inFlight, call);
    TimeSpan slowest = System.Diagnostics.Stopwatch.GetElapsedTime(0, ticks.Max());
    string tenths = TenthsP50(ticks); // before the percentiles of the whole run, which sort the times in place
    (double p50, double p99) = Measure.Percentiles(ticks);
    census?.Print(count);
    Console.WriteLine($"{count} {(bytes > 0 ? $"echoes of {bytes} bytes" : "small calls")} ({(zmq ? "ZeroMQ tcp" : ws ? "HTTP WebSocket" : http ? "HTTP requests" : "in process")}{(inline ? ", inline" : print ? ", printing a line" : "")}{(remote is null ? "" : ", server in its own process")}, {inFlight} in flight): {count / clock.Elapsed.TotalSeconds:0} calls/s, {clock.Elapsed.TotalMilliseconds * 1000 / count:0.0} µs each on average; "
        + $"{(GC.GetTotalAllocatedBytes() - before) / count} B allocated and {(ThreadPool.CompletedWorkItemCount - items) / (double)count:0.00} thread-pool work items and {(Monitor.LockContentionCount - contentions) / (double)count:0.000} contended lock entries a call, a call's p50 {p50:0.0} µs and p99 {p99:0.0} µs (p50 by tenths of the run: {tenths}), the slowest call {slowest.TotalMilliseconds:0.0} ms (the longest GC pause {pauses.Longest}), {ThreadPool.ThreadCount} pool threads, GC heap {GC.GetGCMemoryInfo().HeapSizeBytes / 1e6:0} MB ({GC.GetTotalMemory(forceFullCollection: true) / 1e6:0} MB live), gen2 collections {GC.CollectionCount(2)}, GC pauses {GC.GetTotalPauseDuration().TotalMilliseconds:0} ms");
    PrintCosts(mine, remote is null ? null : (its, remote.Id), count);
    return 0;
}

return await Harness.RunAsync(args);

// The loop's lanes: inFlight of them, each making its share of the calls one after another. Returns every call's time,
// in the order the calls were begun lane by lane (a stall anywhere on the call path shows in the slowest, where the
// average hides it).
static async Task<long[]> LanesAsync(int count, int inFlight, Func<Task> call)
{
    long[] ticks = new long[count];
    await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async lane =>
    {
        for (int i = lane; i < count; i += inFlight)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            await call();
            ticks[i] = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        }
    }));
    return ticks;
}

// The median call of each tenth of the run, in µs: whether calls slow down as a run goes on (a queue's retained records
// growing, the thread pool's threads settling) or not.
static string TenthsP50(long[] ticks)
{
    int tenth = ticks.Length / 10;
    if (tenth == 0) return "";
    return string.Join(", ", Enumerable.Range(0, 10).Select(t => Measure.Percentiles(ticks[(t * tenth)..((t + 1) * tenth)]).P50.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)));
}

static void PrintCosts(ProcessCost? client, (ProcessCost? Before, int Pid)? server, int calls)
{
    Console.WriteLine($"  {(server is null ? "this process" : "client")}: {ProcessCost.PerCall(client, ProcessCost.Read(Environment.ProcessId), calls)}");
    if (server is { } s) Console.WriteLine($"  server: {ProcessCost.PerCall(s.Before, ProcessCost.Read(s.Pid), calls)}");
}
