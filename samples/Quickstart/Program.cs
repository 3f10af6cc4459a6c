using System.Runtime.InteropServices;
using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;
using Quickstart;

// dotnet run --project samples/Quickstart                          server + client session over HTTP on loopback
// dotnet run --project samples/Quickstart -- --transport zmq       the same session over ZeroMQ
// dotnet run --project samples/Quickstart -- --http URL            the session against a server already running
// dotnet run --project samples/Quickstart -- --zmq ENDPOINT        ... reached over ZeroMQ
// dotnet run --project samples/Quickstart -- serve --http URL [--zmq ENDPOINT]
//                                                                   serve until Ctrl+C (JSON-RPC at URL/rpc)
string? http = Option(args, "--http");
string? zmq = Option(args, "--zmq");
if (args.FirstOrDefault() == "serve")
{
    if (http is null && zmq is null) http = "http://127.0.0.1:7777";
    // On Ctrl+C/SIGTERM running calls get up to 10 s to finish before they are cancelled.
    IpyRpcServer server = Demo.CreateServer(new IpyRpcServerOptions { ShutdownTimeout = TimeSpan.FromSeconds(10) });
    IpyRpcHttpServer? httpHost = null;
    IpyRpcZeroMqServer? zmqHost = null;
    try
    {
        if (http is not null)
        {
            httpHost = await IpyRpcHttpServer.StartAsync(server, http);
            Console.WriteLine($"IpyRpc listening on {httpHost.Address} (binary protocol at {httpHost.Address}ipyrpc, JSON-RPC at {httpHost.JsonRpcAddress})");
        }

        if (zmq is not null)
        {
            zmqHost = IpyRpcZeroMqServer.Start(server, zmq);
            Console.WriteLine($"IpyRpc listening on {zmqHost.Endpoint} (ZeroMQ ROUTER)");
        }

        Console.WriteLine("Functions: " + string.Join(", ", server.Functions.Select(f => f.Name)));
        Console.WriteLine("Press Ctrl+C to stop.");
        Console.Out.Flush();
        // Ctrl+C and SIGTERM both stop serving cleanly: calls in flight finish (within 10 s), then the hosts close.
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        await stop.Task;
        Console.WriteLine("Stopping.");

        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.TrySetResult();
        }
    }
    finally
    {
        // The server first: running calls finish while their callers are still connected to hear the results.
        await server.DisposeAsync();
        if (zmqHost is not null) await zmqHost.DisposeAsync();
        if (httpHost is not null) await httpHost.DisposeAsync();
        Console.WriteLine("Stopped.");
    }

    return 0;
}

string transport = Option(args, "--transport") ?? (zmq is not null ? "zmq" : "http");
return await Session.RunAsync(transport, transport == "zmq" ? zmq : http);

static string? Option(string[] args, string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}
