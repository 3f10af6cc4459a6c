using IpyRpc;
using IpyRpc.Http;
using IpyRpc.ZeroMq;

namespace Quickstart;

/// <summary>The interactive tour: what a user sees when calling an IpyRpc server.</summary>
internal static class Session
{
    public static async Task<int> RunAsync(string transport, string? serverAddress)
    {
        // Start a server of our own on a free loopback port, unless pointed at one.
        IpyRpcServer? server = null;
        IAsyncDisposable? host = null;
        if (serverAddress is null)
        {
            server = Demo.CreateServer();
            if (transport == "zmq")
            {
                var zmqHost = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
                (host, serverAddress) = (zmqHost, zmqHost.Endpoint);
            }
            else
            {
                IpyRpcHttpServer httpHost = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0");
                (host, serverAddress) = (httpHost, httpHost.Address.ToString());
            }
        }

        try
        {
            Heading($"Connecting to {serverAddress} over {(transport == "zmq" ? "ZeroMQ" : "HTTP")}");
            await using IpyRpcClient client = transport == "zmq"
                ? await IpyRpcZeroMqClient.ConnectAsync(serverAddress)
                : await IpyRpcHttpClient.ConnectAsync(serverAddress);
            Console.WriteLine($"Connected to {client.ServerAgent}, protocol version {client.ProtocolVersionInUse}.");

            Heading("Every function, with its docstring (client.Functions)");
            foreach (FunctionDescriptor f in client.Functions)
            {
                Console.WriteLine($"  {f.Signature}");
                Console.WriteLine($"      {f.Summary}");
            }

            Heading("help(\"add\") (client.Help)");
            Console.Write(client.Help("add"));

            Heading("Dynamic calls (client.CallAsync)");
            Console.WriteLine($"  add(2, 3)        = {await client.CallAsync<int>("add", 2, 3)}");
            Console.WriteLine($"  echo(\"hello\")    = {await client.CallAsync<string>("echo", "hello")}");
            double[] samples = [1.5, 2.5, 3.5, 4.5];
            Console.WriteLine($"  mean_binary(...) = {await client.CallAsync<double>("mean_binary", samples)}   (MessagePack, numbers as one raw block)");
            Console.WriteLine($"  mean_json(...)   = {await client.CallAsync<double>("mean_json", [samples])}   (in JSON: the *_json rule accepts nothing else, and its descriptor says so)");

            Heading("Remote stdout, live (print_lines(4): each line appears as the server prints it)");
            DateTime started = DateTime.Now;
            int printed = await client.CallAsync<int>("print_lines", [4], new CallOptions
            {
                Output = (stream, text) => Console.Write($"  [remote {stream} +{(DateTime.Now - started).TotalMilliseconds,5:0} ms] {text}"),
            });
            Console.WriteLine($"  print_lines returned {printed}");

            Heading("A remote exception, caught locally");
            try
            {
                await client.CallAsync<object>("fail", "something went wrong on the server");
            }
            catch (RemoteException e)
            {
                Console.WriteLine($"  caught RemoteException from '{e.Function}'");
                Console.WriteLine($"    remote type:    {e.RemoteType}");
                Console.WriteLine($"    remote message: {e.RemoteMessage}");
                Console.WriteLine($"    remote stack:   {e.RemoteStackTrace?.Split('\n')[0].Trim()}");
            }

            try
            {
                await client.CallAsync<int>("add", "two", 3);
            }
            catch (InvalidArgumentsException e)
            {
                Console.WriteLine($"  caught InvalidArgumentsException: {e.Message}");
            }

            Heading("The generated typed proxy (client.Proxy<DemoClient>(): IntelliSense shows the remote docs)");
            DemoClient demo = client.Proxy<DemoClient>();
            Console.WriteLine($"  demo.Add(40, 2)       = {await demo.Add(40, 2)}");
            Console.WriteLine($"  demo.Echo(\"typed\")    = {await demo.Echo("typed")}");
            Console.WriteLine($"  demo.PrintLines(3)    = {await demo.PrintLines(3)}   (remote output above went to this console)");
            Console.WriteLine();
            Console.WriteLine("Done. Serve these functions yourself with: dotnet run --project samples/Quickstart -- serve --http http://127.0.0.1:7777");
            return 0;
        }
        finally
        {
            if (host is not null) await host.DisposeAsync();
            if (server is not null) await server.DisposeAsync();
        }
    }

    private static void Heading(string text)
    {
        Console.WriteLine();
        Console.WriteLine("== " + text);
    }
}
