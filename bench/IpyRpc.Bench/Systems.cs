using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using IpyRpc.Formatting;
using IpyRpc.Http;
using IpyRpc.Protocol;
using IpyRpc.ZeroMq;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace IpyRpc.Bench;

/// <summary>
/// One system under test: how to make the small call, and (for those that move payloads) how to
/// echo bytes and doubles. Raw baselines also supply a pipelined throughput loop of their own.
/// </summary>
internal sealed class SystemUnderTest : IAsyncDisposable
{
    public required string Name { get; init; }

    public required Func<Task> SmallCall { get; init; }

    public Func<byte[], Task>? EchoBytes { get; init; }

    public Func<double[], Task>? EchoDoubles { get; init; }

    /// <summary>For synchronous raw baselines: calls/s with N in flight, pipelined on one thread.</summary>
    public Func<int, int, double>? PipelinedThroughput { get; init; }

    /// <summary>The raw libzmq floor, polled (the loop's probe): how many times its client has waited in poll(2).</summary>
    public Func<long>? PollWaits { get; init; }

    public Func<ValueTask>? Dispose { get; init; }

    /// <summary>The processes of its own it started (a queue's workers), to read what they spent.</summary>
    public int[] Processes { get; init; } = [];

    public async ValueTask DisposeAsync()
    {
        if (Dispose is not null) await Dispose();
    }
}

/// <summary>Builds the systems, connected to the server process (or in this process, for in-process).</summary>
internal static class Systems
{
    public static async Task<SystemUnderTest> InProcessAsync() => await InProcessAsync(inline: false);

    /// <summary>In process; with <paramref name="inline"/> the function called is <c>add_inline</c>, run on the receiving thread.</summary>
    public static async Task<SystemUnderTest> InProcessAsync(bool inline)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 1024 });
        BenchFunctions.Configure(server);
        IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        return IpyRpcSystem(inline ? "ipyrpc-inproc-inline" : "ipyrpc-inproc", client, async () =>
        {
            await client.DisposeAsync();
            await server.DisposeAsync();
        }, inline);
    }

    /// <summary>
    /// The in-process floor: the generated invoker of <c>add</c> called directly, with the arguments
    /// encoded and parsed and the result encoded and decoded as a call's are, but no client, no
    /// server session, no queue and no thread hand-off: what a call costs before any plumbing.
    /// </summary>
    public static SystemUnderTest InProcessFloor()
    {
        IpyRpcFunction add = GeneratedServices.Find(typeof(BenchFunctions))!.CreateFunctions(null).Single(f => f.Name == "add");
        async Task Call()
        {
            ReadOnlyMemory<byte> arguments = new IpyRpcArguments().Add(1, Formatting.Formatters.Int32).Add(2, Formatting.Formatters.Int32).Encode(Serialization.MessagePack);
            var invocation = new IpyRpcInvocation(add, CallArguments.Parse(arguments, Serialization.MessagePack, "add"), Serialization.MessagePack, CancellationToken.None);
            await add.Invoker(invocation);
            var reader = new MessagePack.MessagePackReader(invocation.Result.Span);
            if (Formatting.Formatters.Int32.Read(ref reader) != 3) throw new InvalidOperationException("add(1, 2) is not 3");
        }

        return new SystemUnderTest { Name = "ipyrpc-inproc-floor", SmallCall = Call };
    }

    public static async Task<SystemUnderTest> ZeroMqAsync(string name, string endpoint, bool inline = false)
    {
        IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(endpoint);
        return IpyRpcSystem(name, client, client.DisposeAsync, inline);
    }

    public static async Task<SystemUnderTest> HttpBinaryAsync(string address)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { Timeout = TimeSpan.FromMinutes(5) };
        IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(new Uri(address), HttpCarrier.Requests, null, http);
        return IpyRpcSystem("ipyrpc-http-binary", client, async () =>
        {
            await client.DisposeAsync();
            http.Dispose();
        });
    }

    /// <summary>The binary protocol over one WebSocket (the HTTP client's default carrier): the like of SignalR's connection.</summary>
    public static async Task<SystemUnderTest> HttpWebSocketAsync(string address)
    {
        IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(new Uri(address), HttpCarrier.WebSocket);
        return IpyRpcSystem("ipyrpc-http-ws", client, client.DisposeAsync);
    }

    /// <summary>A system calling through a typed proxy; with <paramref name="inline"/> its small call is <c>add_inline</c> (<see cref="FunctionOptions.Inline"/>).</summary>
    private static SystemUnderTest IpyRpcSystem(string name, IpyRpcClient client, Func<ValueTask> dispose, bool inline = false)
    {
        BenchFunctionsClient f = client.Proxy<BenchFunctionsClient>();
        return new SystemUnderTest
        {
            Name = name,
            SmallCall = inline ? () => f.AddInline(2, 3) : () => f.Add(2, 3),
            EchoBytes = data => f.EchoBytes(data),
            EchoDoubles = data => f.EchoDoubles(data),
            Dispose = dispose,
        };
    }

    /// <summary>JSON-RPC over HTTP, as curl or any JSON-RPC client would call: a plain HttpClient.</summary>
    public static SystemUnderTest HttpJsonRpc(string address)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri(address) };
        byte[] body = JsonRpcAddBody;
        return new SystemUnderTest
        {
            Name = "ipyrpc-http-jsonrpc",
            SmallCall = async () =>
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new("application/json");
                using HttpResponseMessage response = await http.PostAsync("rpc", content);
                byte[] reply = await response.Content.ReadAsByteArrayAsync();
                if (reply.AsSpan().IndexOf("\"result\":5"u8) < 0) throw new InvalidOperationException("Unexpected JSON-RPC reply: " + Encoding.UTF8.GetString(reply));
            },
            Dispose = () =>
            {
                http.Dispose();
                return default;
            },
        };
    }

    public static readonly byte[] JsonRpcAddBody = """{"jsonrpc":"2.0","method":"add","params":[2,3],"id":1}"""u8.ToArray();

    /// <summary>The floor for HTTP: Kestrel echoing the same body, through HttpClient.</summary>
    public static SystemUnderTest RawKestrel(string baseline)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri(baseline), Timeout = TimeSpan.FromMinutes(5) };
        async Task Echo(byte[] body)
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new("application/octet-stream");
            using HttpResponseMessage response = await http.PostAsync("echo", content);
            byte[] reply = await response.Content.ReadAsByteArrayAsync();
            if (reply.Length != body.Length) throw new InvalidOperationException("The echo lost bytes.");
        }

        return new SystemUnderTest
        {
            Name = "raw-kestrel",
            SmallCall = () => Echo(JsonRpcAddBody),
            EchoBytes = Echo,
            Dispose = () =>
            {
                http.Dispose();
                return default;
            },
        };
    }

    /// <summary>The do-it-yourself REST call: a minimal API with System.Text.Json source generation.</summary>
    public static SystemUnderTest MinimalApi(string baseline)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { BaseAddress = new Uri(baseline) };
        var request = new AddRequest(2, 3);
        return new SystemUnderTest
        {
            Name = "aspnet-minimal-api",
            SmallCall = async () =>
            {
                using HttpResponseMessage response = await http.PostAsJsonAsync("add", request, BenchJsonContext.Default.AddRequest);
                AddResponse? sum = await response.Content.ReadFromJsonAsync(BenchJsonContext.Default.AddResponse);
                if (sum?.Sum != 5) throw new InvalidOperationException("Wrong sum from the REST baseline.");
            },
            Dispose = () =>
            {
                http.Dispose();
                return default;
            },
        };
    }

    /// <summary>ASP.NET Core SignalR invoking a hub method over WebSockets.</summary>
    public static async Task<SystemUnderTest> SignalRAsync(string baseline)
    {
        var builder = new HubConnectionBuilder();
        builder.Services.AddSingleton<IConnectionFactory, WebSocketConnectionFactory>();
        builder.Services.AddSingleton<EndPoint>(new UriEndPoint(new Uri(baseline.Replace("http://", "ws://") + "hub")));
        HubConnection connection = builder.Build();
        await connection.StartAsync();
        return new SystemUnderTest
        {
            Name = "signalr",
            SmallCall = async () =>
            {
                if (await connection.InvokeAsync<int>("Add", 2, 3) != 5) throw new InvalidOperationException("Wrong sum from SignalR.");
            },
            Dispose = connection.DisposeAsync,
        };
    }

    /// <summary>The floor for ZeroMQ: the same frames IpyRpc sends for add(2, 3), echoed by a bare ROUTER.</summary>
    public static SystemUnderTest RawZeroMq(string endpoint, bool polled = false)
    {
        var client = new RawZmq.Client(endpoint, polled);
        ReadOnlyMemory<byte>[] small = Frames("add", new IpyRpcArguments().Add(2, Formatters.Int32).Add(3, Formatters.Int32));
        return new SystemUnderTest
        {
            Name = "raw-libzmq",
            PollWaits = polled ? () => client.PollWaits : null,
            SmallCall = () =>
            {
                client.Send(small);
                client.Receive();
                return Task.CompletedTask;
            },
            EchoBytes = data =>
            {
                client.Send(Frames("echo_bytes", new IpyRpcArguments().Add(data, Formatters.ByteArray)));
                client.Receive();
                return Task.CompletedTask;
            },
            EchoDoubles = data =>
            {
                client.Send(Frames("echo_doubles", new IpyRpcArguments().Add(data, Formatters.DoubleArray)));
                client.Receive();
                return Task.CompletedTask;
            },
            PipelinedThroughput = (inFlight, total) =>
            {
                long start = Stopwatch.GetTimestamp();
                int sent = 0, received = 0;
                for (; sent < Math.Min(inFlight, total); sent++) client.Send(small);
                while (received < total)
                {
                    client.Receive();
                    received++;
                    if (sent < total)
                    {
                        client.Send(small);
                        sent++;
                    }
                }

                return total / Stopwatch.GetElapsedTime(start).TotalSeconds;
            },
            Dispose = () =>
            {
                client.Dispose();
                return default;
            },
        };
    }

    /// <summary>The frames of an IpyRpc call: its header and its encoded arguments.</summary>
    private static ReadOnlyMemory<byte>[] Frames(string function, IpyRpcArguments arguments)
        => [MessageCodec.EncodeHeader(new IpyRpcMessage { Kind = MessageKind.Call, Id = 1, Function = function }), arguments.Encode(Serialization.MessagePack)];
}
