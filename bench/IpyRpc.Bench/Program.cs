using IpyRpc.Bench;

// dotnet run -c Release --project bench/IpyRpc.Bench -- [--quick | --smoke] [--repeat N] [--json FILE] [scenario…]
//   --repeat N: run everything N times; each ratio is the median of the N runs' ratios (each run's value is listed)
//   scenarios: small, payload, pointers, queues, serialization, python (default: all)
// dotnet run -c Release --project bench/IpyRpc.Bench -- serve      the server process the harness starts
if (args.FirstOrDefault() == "serve")
{
    return await Serve.RunAsync();
}

return await Harness.RunAsync(args);
