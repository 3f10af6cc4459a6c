using IpyRpc.Bench;

// dotnet run -c Release --project bench/IpyRpc.Bench -- [--quick] [--json FILE] [scenario…]
//   scenarios: small, payload, pointers, queues, serialization, python (default: all)
// dotnet run -c Release --project bench/IpyRpc.Bench -- serve      the server process the harness starts
if (args.FirstOrDefault() == "serve")
{
    return await Serve.RunAsync();
}

return await Harness.RunAsync(args);
