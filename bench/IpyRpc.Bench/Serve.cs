using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.ZeroMq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace IpyRpc.Bench;

/// <summary>Addresses of everything the server process serves, as it reports them when ready.</summary>
internal sealed record Endpoints(string Http, string ZmqTcp, string ZmqIpc, string RawZmq, string Baseline);

/// <summary>
/// The server process: IpyRpc over HTTP and ZeroMQ (tcp and ipc), and the baselines (raw libzmq
/// echo, raw Kestrel echo, a minimal API, a SignalR hub). It prints one <c>READY {json}</c> line
/// when every listener is up, answers a <c>jit</c> line with <c>JIT</c> and the number of methods its JIT has
/// compiled, and exits when its standard input closes.
/// </summary>
internal static class Serve
{
    /// <param name="forget">The queue keeps finished calls' records within 1 MB instead of 256 MB (the loop's <c>forget</c>).</param>
    /// <param name="polled">The raw libzmq echo waits as IpyRpc's socket thread does (the loop's <c>polled</c>).</param>
    public static async Task<int> RunAsync(bool forget = false, bool polled = false)
    {
        // The harness keeps up to 64 calls in flight on one connection: that is the measurement, not abuse.
        // Messages up to 1 GiB and a 2 GiB data store: the pointer scenario fetches a 640 MB array whole.
        await using var server = new IpyRpcServer(new IpyRpcServerOptions
        {
            MaxCallsInFlightPerConnection = 1024,
            MaxMessageBytes = 1L << 30,
            DataStore = new IpyRpcDataStore(new DataStoreOptions { MaxBytes = 2L << 30 }),
            Queue = forget ? ForgetfulQueue() : null,
        });
        BenchFunctions.Configure(server);
        await using IpyRpcHttpServer http = await IpyRpcHttpServer.StartAsync(server, "http://127.0.0.1:0", new IpyRpcHttpOptions { MaxJsonRequestBytes = 512L * 1024 * 1024 });
        string ipcPath = Path.Combine(Path.GetTempPath(), $"ipyrpc-bench-{Environment.ProcessId}.sock");
        await using IpyRpcZeroMqServer zmqTcp = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*", new ZeroMqOptions { MaxMessageBytes = 1L << 30 });
        await using IpyRpcZeroMqServer zmqIpc = IpyRpcZeroMqServer.Start(server, "ipc://" + ipcPath);
        using var raw = new RawZmq.EchoServer("tcp://127.0.0.1:*", polled);
        WebApplication baseline = await StartBaselineAsync();
        try
        {
            var endpoints = new Endpoints(http.Address.ToString(), zmqTcp.Endpoint, zmqIpc.Endpoint, raw.Endpoint, BaselineAddress(baseline));
            Console.WriteLine("READY " + JsonSerializer.Serialize(endpoints, BenchReportJson.SingleLine.Endpoints));
            Console.Out.Flush();
            // The harness asks how many methods the JIT has compiled here ("jit"), to warm up until it has settled, and
            // closes our stdin to stop us.
            while (await Console.In.ReadLineAsync() is { } command)
            {
                if (command == "jit")
                {
                    Console.WriteLine("JIT " + System.Runtime.JitInfo.GetCompiledMethodCount().ToString(System.Globalization.CultureInfo.InvariantCulture));
                    Console.Out.Flush();
                }
            }
        }
        finally
        {
            await baseline.StopAsync();
            await baseline.DisposeAsync();
            File.Delete(ipcPath);
        }

        return 0;
    }

    /// <summary>An in-memory queue that keeps finished calls' records within 1 MB instead of 256 MB: what retention costs shows beside the default.</summary>
    public static IpyRpc.Jobs.InMemoryJobQueue ForgetfulQueue() =>
        new(new IpyRpc.Jobs.InMemoryJobQueueOptions { Retention = new IpyRpc.Jobs.JobRetention { MaxAge = TimeSpan.FromHours(1), MaxBytes = 1 << 20 } });

    /// <summary>The baselines' address, ending in a slash.</summary>
    public static string BaselineAddress(WebApplication baseline) =>
        baseline.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/";

    public static async Task<WebApplication> StartBaselineAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = null);
        builder.Services.AddSignalR();
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, BenchJsonContext.Default));
        WebApplication app = builder.Build();
        app.UseWebSockets();

        // The raw Kestrel floor: read the body, send it back, nothing else. (Reading it whole first
        // is what any request/response endpoint does; streaming it straight back over HTTP/1.1
        // deadlocks on bodies larger than the socket buffers.)
        app.MapPost("/echo", async (HttpContext context) =>
        {
            var body = new MemoryStream((int)(context.Request.ContentLength ?? 4096));
            await context.Request.Body.CopyToAsync(body);
            context.Response.ContentType = context.Request.ContentType;
            context.Response.ContentLength = body.Length;
            await context.Response.Body.WriteAsync(body.GetBuffer().AsMemory(0, (int)body.Length));
        });

        // The do-it-yourself REST endpoint with System.Text.Json.
        app.MapPost("/add", (AddRequest request) => new AddResponse(request.A + request.B));

        app.MapHub<AddHub>("/hub");
        await app.StartAsync();
        return app;
    }
}
