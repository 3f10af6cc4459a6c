using Calc.Server;
using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;

// dotnet run --project samples/Contracts/Calc.Server [-- --http URL --zmq ENDPOINT]
// Serves the ICalculator contract over HTTP and ZeroMQ until Enter (or the end of input).
string http = Option(args, "--http") ?? "http://127.0.0.1:0";
string zmq = Option(args, "--zmq") ?? "tcp://127.0.0.1:*";

// The instance's class implements [IpyRpcContract] ICalculator: its methods are the server's functions.
await using var server = new IpyRpcServer();
server.Register(new Calculator());
await using IpyRpcHttpServer httpHost = await IpyRpcHttpServer.StartAsync(server, http);
await using IpyRpcZeroMqServer zmqHost = IpyRpcZeroMqServer.Start(server, zmq);

Console.WriteLine($"serving {string.Join(", ", server.Functions.Select(f => f.Name))} in process {Environment.ProcessId}");
Console.WriteLine($"http: {httpHost.Address}");
Console.WriteLine($"zmq: {zmqHost.Endpoint}");
Console.WriteLine("Press Enter to stop.");
await Console.In.ReadLineAsync();
return 0;

static string? Option(string[] args, string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
