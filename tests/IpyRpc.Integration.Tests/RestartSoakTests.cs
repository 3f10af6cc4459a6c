using System.Collections.Concurrent;
using System.Diagnostics;
using IpyRpc.Http;
using IpyRpc.Tests;
using IpyRpc.TestWorker;
using IpyRpc.ZeroMq;
using Xunit.Abstractions;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// Servers that restart: callers over ZeroMQ, WebSocket and HTTP requests keep calls in flight while the server (with a
/// shared secret) stops, draining, every second or two and a new one starts at the same addresses 0.1 to 1 s later. Each
/// call must end one of the ways a caller can act on: answered right, having run once; refused as <c>unavailable</c> by
/// the draining server, or failed as never delivered, and then it never ran; or lost with the connection ("may or may
/// not have run") or cancelled by its closing, when it ran at most once. No call may run twice.
/// <c>IPYRPC_SOAK_SECONDS</c> sets how long (docs/TESTING.md).
/// </summary>
[Collection(nameof(SoakCollection))]
public sealed class RestartSoakTests(ITestOutputHelper output)
{
    private const string Secret = "restart soak";

    [Fact]
    public async Task CallsGoOnWhileTheServerRestartsAndNoneRunsTwice()
    {
        string zmq = $"tcp://127.0.0.1:{LoopbackPorts.Free()}";
        string http = $"http://127.0.0.1:{LoopbackPorts.Free()}";
        var random = new Random(11);
        Running server = await Running.StartAsync(zmq, http);
        IpyRpcClientOptions Options() => new() { SharedSecret = Secret, Output = (_, _) => { } };
        IpyRpcClient[] clients =
        [
            await IpyRpcZeroMqClient.ConnectAsync(zmq, Options()),
            await IpyRpcHttpClient.ConnectAsync(new Uri(http), HttpCarrier.WebSocket, Options()),
            await IpyRpcHttpClient.ConnectAsync(new Uri(http), HttpCarrier.Requests, Options()),
        ];
        string[] carriers = ["zeromq", "websocket", "requests"];

        var clock = Stopwatch.StartNew();
        TimeSpan length = TimeSpan.FromSeconds(SoakTests.Seconds);
        var wrong = new ConcurrentQueue<string>();
        var lost = new ConcurrentQueue<long>();
        var lostWhy = new ConcurrentQueue<string>();
        var cancelled = new ConcurrentQueue<long>();
        long next = -1, answered = 0, refused = 0, notDelivered = 0;
        var byCarrier = new long[carriers.Length];
        Task[] callers = [.. Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
        {
            int lane = i % clients.Length;
            IpyRpcClient client = clients[lane];
            while (clock.Elapsed < length)
            {
                long x = Interlocked.Increment(ref next);
                try
                {
                    long square = await client.CallAsync<long>("restart_soak.square", x);
                    if (square != x * x) wrong.Enqueue($"{carriers[lane]}: {x}² came back {square}");
                    else if (RestartSoakFunctions.Runs(x) != 1) wrong.Enqueue($"{carriers[lane]}: {x} answered, and ran {RestartSoakFunctions.Runs(x)} times");
                    Interlocked.Increment(ref answered);
                    Interlocked.Increment(ref byCarrier[lane]);
                }
                catch (IpyRpcUnavailableException e) when (e.JobId is null)
                {
                    Interlocked.Increment(ref refused);
                    if (RestartSoakFunctions.Runs(x) != 0) wrong.Enqueue($"{carriers[lane]}: {x} refused as unavailable, and ran");
                }
                catch (IpyRpcConnectionException e) when (e.NotDelivered)
                {
                    Interlocked.Increment(ref notDelivered);
                    if (RestartSoakFunctions.Runs(x) != 0) wrong.Enqueue($"{carriers[lane]}: {x} never delivered ({e.Message}), and ran");
                }
                catch (IpyRpcCancelledException)
                {
                    cancelled.Enqueue(x); // ended by the closing connection, started or not: checked at the end
                }
                catch (IpyRpcConnectionException e)
                {
                    lost.Enqueue(x); // may or may not have run: checked at the end
                    if (lostWhy.Count < 20) lostWhy.Enqueue($"{carriers[lane]}: {e.Message}");
                }
                catch (Exception e)
                {
                    wrong.Enqueue($"{carriers[lane]}: {x}: {e.GetType().Name}: {e.Message}");
                }
            }
        }))];

        int restarts = 0;
        while (clock.Elapsed < length)
        {
            await Task.Delay(1000 + random.Next(1000));
            await server.DisposeAsync();
            await Task.Delay(100 + random.Next(900));
            server = await Running.StartAsync(zmq, http);
            restarts++;
        }

        try
        {
            await Task.WhenAll(callers).WaitAsync(TimeSpan.FromMinutes(2));
        }
        finally
        {
            foreach (IpyRpcClient client in clients) await client.DisposeAsync();
            await server.DisposeAsync();
        }

        long calls = next + 1;
        foreach (long x in lost.Concat(cancelled))
        {
            if (RestartSoakFunctions.Runs(x) > 1) wrong.Enqueue($"{x} lost or cancelled with its connection, and ran {RestartSoakFunctions.Runs(x)} times");
        }

        string summary = $"{calls} calls in {clock.Elapsed.TotalSeconds:F0} s, {restarts} restarts: {answered} answered "
            + $"({string.Join(", ", carriers.Select((c, i) => $"{byCarrier[i]} over {c}"))}), {refused} refused by a draining server, "
            + $"{notDelivered} never delivered (waited past 30 s), {lost.Count} lost with their connection "
            + $"({lost.Count(x => RestartSoakFunctions.Runs(x) == 1)} of them had run), {cancelled.Count} cancelled by it "
            + $"({cancelled.Count(x => RestartSoakFunctions.Runs(x) == 1)} had run)";
        output.WriteLine(summary);
        foreach (string why in lostWhy.Distinct().Take(8)) output.WriteLine("lost: " + why);
        Assert.True(wrong.IsEmpty, $"{wrong.Count} wrong outcomes of {calls}, the first: {string.Join(" | ", wrong.Take(5))}. {summary}");
        Assert.Equal(calls, answered + refused + notDelivered + lost.Count + cancelled.Count);
        Assert.All(byCarrier, n => Assert.True(n > 0, summary)); // every carrier got through restarts
    }

    /// <summary>A server on ZeroMQ and HTTP; stopping it drains its running calls (up to a second), then closes the transports.</summary>
    private sealed class Running(IpyRpcServer server, IpyRpcZeroMqServer zmq, IpyRpcHttpServer http) : IAsyncDisposable
    {
        public static async Task<Running> StartAsync(string zmq, string http)
        {
            var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = Secret, ShutdownTimeout = TimeSpan.FromSeconds(1) });
            server.Register(typeof(RestartSoakFunctions));
            return new Running(server, IpyRpcZeroMqServer.Start(server, zmq), await IpyRpcHttpServer.StartAsync(server, http));
        }

        public async ValueTask DisposeAsync()
        {
            await server.DisposeAsync();
            await zmq.DisposeAsync();
            await http.DisposeAsync();
        }
    }
}
