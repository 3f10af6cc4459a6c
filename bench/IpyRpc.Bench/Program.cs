using IpyRpc.Bench;

// dotnet run -c Release --project bench/IpyRpc.Bench -- [--quick | --smoke] [--repeat N] [--json FILE] [scenario…]
//   --repeat N: run everything N times; each ratio is the median of the N runs' ratios (each run's value is listed)
//   scenarios: small, payload, pointers, queues, serialization, python (default: all)
// dotnet run -c Release --project bench/IpyRpc.Bench -- serve      the server process the harness starts
// dotnet run -c Release --project bench/IpyRpc.Bench -- loop [N]   N in-process small calls, for a profiler
if (args.FirstOrDefault() == "serve")
{
    return await Serve.RunAsync();
}

// dotnet run -c Release --project bench/IpyRpc.Bench -- loop [N]
//   N sequential in-process small calls and nothing else, to run under a profiler
//   (dotnet-trace collect --profile dotnet-sampled-thread-time -- dotnet IpyRpc.Bench.dll loop 200000)
if (args.FirstOrDefault() == "loop")
{
    int count = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200_000;
    await using SystemUnderTest system = await Systems.InProcessAsync();
    var clock = System.Diagnostics.Stopwatch.StartNew();
    for (int i = 0; i < count; i++) await system.SmallCall();
    Console.WriteLine($"{count} in-process small calls, {clock.Elapsed.TotalMilliseconds * 1000 / count:0.0} µs each on average");
    return 0;
}

return await Harness.RunAsync(args);
