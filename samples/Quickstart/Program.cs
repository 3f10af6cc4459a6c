using IpyRpc;
using IpyRpc.Http;
using Quickstart;

// dotnet run --project samples/Quickstart                      a server and a client session, over HTTP on loopback
// dotnet run --project samples/Quickstart -- serve --http URL  serve until Ctrl+C (JSON-RPC at URL/rpc)
string? http = Option(args, "--http");
if (args.FirstOrDefault() == "serve")
{
    await using IpyRpcServer server = Demo.CreateServer();
    await using IpyRpcHttpServer host = await IpyRpcHttpServer.StartAsync(server, http ?? "http://127.0.0.1:7777");
    Console.WriteLine($"IpyRpc listening on {host.Address} (binary protocol at {host.Address}ipyrpc, JSON-RPC at {host.JsonRpcAddress})");
    Console.WriteLine("Functions: " + string.Join(", ", server.Functions.Select(f => f.Name)));
    Console.WriteLine("Press Ctrl+C to stop.");
    var stop = new TaskCompletionSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        stop.TrySetResult();
    };
    AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.TrySetResult();
    await stop.Task;
    return 0;
}

return await Session.RunAsync(http);

static string? Option(string[] args, string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
