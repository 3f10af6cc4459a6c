using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using IpyRpc.Http;
using IpyRpc.Jobs;
using IpyRpc.Tests;
using IpyRpc.TestWorker;
using IpyRpc.ZeroMq;
using Xunit.Abstractions;

namespace IpyRpc.Integration.Tests;

/// <summary>
/// One server on every transport at once, called for a while by clients on all of them with a mix of quick calls,
/// echoes, calls that talk, streams, calls the server answers by calling the caller back, jobs submitted and attached
/// to, results kept as pointers and fetched by rows, calls that throw and calls
/// cancelled or timed out while they run, with events published to the subscribed clients all along, and the Python
/// client of samples/python as one more lane; each client connects,
/// keeps eight calls in flight for a few hundred calls, and goes, over and over. Every answer is checked, and at the
/// end nothing is left behind: no connection, no subscription, no running call, no more threads, heap, sockets, pipes or event descriptors
/// than a little over those at the start. <c>IPYRPC_SOAK_SECONDS</c> sets how long it runs (a few seconds in an ordinary
/// test run; docs/TESTING.md has the long one).
/// </summary>
[Collection(nameof(SoakCollection))]
public sealed class SoakTests(ITestOutputHelper output)
{
    private const int InFlightPerClient = 8;
    private const long RetentionBytes = 16L * 1024 * 1024;

    private const string Secret = "soak secret";

    /// <summary>
    /// A lane's client options: the server calls these clients back (over the carriers that go both ways; the output of
    /// those calls is not checked), and with a shared secret each lane proves it under a name of its own.
    /// </summary>
    private static IpyRpcClientOptions Options(string lane, bool secret, bool exports = true) => new()
    {
        Exports = exports ? [typeof(SoakClientSide)] : [],
        Output = (_, _) => { },
        SharedSecret = secret ? Secret : null,
        ClientName = secret ? "soak-" + lane : null,
    };

    /// <summary>How long a soak runs: <c>IPYRPC_SOAK_SECONDS</c>, or a few seconds in an ordinary test run.</summary>
    internal static int Seconds => int.TryParse(Environment.GetEnvironmentVariable("IPYRPC_SOAK_SECONDS"), out int s) && s > 0 ? s : 6;

    /// <param name="secret">
    /// The server requires a shared secret: every lane proves it under a name of its own and the server must say, call
    /// after call, that name called; JSON-RPC requests, which cannot prove it, are refused every time; and an impostor
    /// lane connects over and over with a wrong secret or none, and must be refused at once each time.
    /// </param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task EveryTransportAtOnceForAWhileAnswersEveryCallRightAndLeavesNothingBehind(bool secret)
    {
        var watch = new Watch();
        int sleepingAtStart = Volatile.Read(ref SoakFunctions.Sleeping);
        string ipc = Path.Combine(Path.GetTempPath(), $"ipyrpc-soak-{Guid.NewGuid():N}.sock");
        var stats = new Stats();
        // Finished calls' records are kept within a budget; a small one, so that a long run reaches it and the heap's
        // bound below says the budget holds (the default, 256 MiB, would take a few minutes to fill).
        var queue = new InMemoryJobQueue(new InMemoryJobQueueOptions { Retention = new JobRetention { MaxAge = TimeSpan.FromHours(1), MaxBytes = RetentionBytes } });
        await using (var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 4 * InFlightPerClient, Queue = queue, SharedSecret = secret ? Secret : null }))
        {
            server.Register(typeof(SoakFunctions)).Register(typeof(SoakEvents));
            await using IpyRpcZeroMqServer tcp = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
            await using IpyRpcZeroMqServer unix = IpyRpcZeroMqServer.Start(server, "ipc://" + ipc);
            // A short idle timeout for connections over HTTP requests, so that the quiet lane's pings keep its connection
            // while the idle sweep runs every half second among the others.
            await using IpyRpcHttpServer http = await IpyRpcHttpServer.StartAsync(server, options: new IpyRpcHttpOptions { ConnectionIdleTimeout = QuietTimeout });
            Uri address = http.Address;

            var lanes = new (string Carrier, Func<Task<IpyRpcClient>> Connect)[]
            {
                ("zeromq-tcp", () => IpyRpcZeroMqClient.ConnectAsync(tcp.Endpoint, Options("zeromq-tcp", secret))),
                ("zeromq-ipc", () => IpyRpcZeroMqClient.ConnectAsync(unix.Endpoint, Options("zeromq-ipc", secret))),
                ("websocket", () => IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.WebSocket, Options("websocket", secret))),
                ("http-requests", () => IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.Requests, Options("http-requests", secret, exports: false))), // one way: nothing to call back
            };

            var until = Stopwatch.StartNew();
            TimeSpan length = TimeSpan.FromSeconds(Seconds);
            var running = new List<Task>();
            foreach ((string carrier, Func<Task<IpyRpcClient>> connect) in lanes)
            {
                running.Add(Task.Run(() => ClientLaneAsync(carrier, connect, stats, until, length, secret)));
            }

            running.Add(Task.Run(() => JsonRpcLaneAsync(address, stats, until, length, secret)));
            running.Add(Task.Run(() => EventStreamLaneAsync(address, stats, until, length, secret)));
            running.Add(Task.Run(() => ResumeLaneAsync(address, stats, until, length, secret)));
            running.Add(Task.Run(() => QuietLaneAsync(address, stats, until, length, secret)));
            if (secret) running.Add(Task.Run(() => ImpostorLaneAsync(tcp.Endpoint, address, stats, until, length)));
            Task<(int ExitCode, string Report)> python = PythonLaneAsync(tcp.Endpoint, length, secret);
            Task all = Task.WhenAll(running);

            // Events all along, to whoever is subscribed at the time (every client over a carrier that goes both ways).
            Task publishing = Task.Run(async () =>
            {
                for (long tick = 0; !all.IsCompleted; tick++)
                {
                    server.Publish(SoakEvents.Ticked, tick);
                    await Task.Delay(1);
                }
            });
            while (!all.IsCompleted)
            {
                await Task.WhenAny(all, Task.Delay(1000));
                watch.Check(stats.Calls);
            }

            await all.WaitAsync(TimeSpan.FromMinutes(2));
            await publishing;
            (int pythonExit, string pythonReport) = await python.WaitAsync(TimeSpan.FromMinutes(2));
            double elapsed = until.Elapsed.TotalSeconds;

            output.WriteLine($"{Seconds} s{(secret ? ", a shared secret" : "")}: {stats.Calls} calls in {elapsed:F1} s ({stats.Calls / elapsed:F0} a second), {stats.Connections} connections");
            foreach ((string key, int count) in stats.ByKind.OrderBy(k => k.Key)) output.WriteLine($"  {key}: {count}");
            output.WriteLine("  python over zeromq-tcp: " + pythonReport.Trim());
            Assert.True(stats.Errors.IsEmpty, $"{stats.Errors.Count} wrong answers, the first: {string.Join(" | ", stats.Errors.Take(5))}");
            Assert.True(pythonExit == 0 && System.Text.RegularExpressions.Regex.IsMatch(pythonReport, @"calls [1-9]\d* wrong 0 connections [1-9]\d* stops [1-9]"), "the Python peer: " + pythonReport);

            // Every client is gone: the server holds no connection and runs nothing for them.
            Assert.True(await EventuallyAsync(() => server.Connections.Count == 0), $"connections left: {string.Join(", ", server.Connections)}");
            Assert.True(await EventuallyAsync(() => server.Publish(SoakEvents.Ticked, long.MaxValue) == 0), "subscriptions left");
            Assert.True(await EventuallyAsync(() => Volatile.Read(ref SoakFunctions.Sleeping) == sleepingAtStart), $"{SoakFunctions.Sleeping} cancelled or timed-out calls still running on the server");
            Assert.True(await EventuallyAsync(async () => (await server.Queue.ListAsync(new JobQuery { State = JobState.Running })).Count == 0 && (await server.Queue.ListAsync(new JobQuery { State = JobState.Queued })).Count == 0), "jobs left running or queued");

            foreach (string carrier in lanes.Select(l => l.Carrier).Append("jsonrpc").Append("event-stream").Append("http-quiet").Concat(secret ? ["impostor"] : []))
            {
                string[] kinds = carrier switch
                {
                    "jsonrpc" => secret ? ["refused"] : ["add", "fail", "unknown"],
                    "event-stream" => secret ? ["refused"] : ["event", "resumed"],
                    "http-quiet" => ["add"],
                    "impostor" => ["zeromq-tcp wrong secret", "zeromq-tcp no secret", "websocket wrong secret", "http-requests wrong secret"],
                    "http-requests" => ["add", "echo", "talk", "fail", "stream", "job", "pointer", "cancel", "timeout"],
                    _ => ["add", "echo", "talk", "fail", "stream", "back", "job", "pointer", "cancel", "timeout", "event"],
                };
                if (secret && carrier is not ("jsonrpc" or "event-stream" or "impostor" or "http-quiet")) kinds = [.. kinds, "who"]; // the quiet lane asks with every call
                foreach (string kind in kinds)
                {
                    Assert.True(stats.ByKind.GetValueOrDefault($"{carrier} {kind}") > 0, $"no {kind} over {carrier}");
                }
            }
        }

        // With the server and its hosts gone too: threads, heap and descriptors back near where they started.
        File.Delete(ipc);
        Assert.True(await EventuallyAsync(() => Watch.DescriptorsNow() - watch.Descriptors < 16), $"descriptors (not files): {watch.Descriptors} at the start, {Watch.DescriptorsNow()} at the end ({Watch.DescriptorKinds()})");
        watch.Check(stats.Calls);
        output.WriteLine($"peak heap {watch.PeakHeap / 1048576} MiB (start {watch.Heap / 1048576}), peak threads {watch.PeakThreads} (start {watch.Threads}), peak descriptors {watch.PeakDescriptors} (start {watch.Descriptors})");
    }

    private static async Task ClientLaneAsync(string carrier, Func<Task<IpyRpcClient>> connect, Stats stats, Stopwatch clock, TimeSpan length, bool secret)
    {
        var random = new Random(carrier.GetHashCode());
        while (clock.Elapsed < length)
        {
            await using IpyRpcClient client = await connect();
            Interlocked.Increment(ref stats.Connections);
            Leaving leaving = WatchLink(client, carrier, stats);
            IpyRpcSubscription? ticks = null;
            if (carrier != "http-requests")
            {
                // Events come in the order they were published: a subscriber may miss some (its buffer is bounded), never
                // see one twice or an older one after a newer.
                long last = -1;
                ticks = await client.SubscribeAsync(SoakEvents.Ticked, tick =>
                {
                    if (tick <= last) stats.Wrong(carrier, "event", $"tick {tick} after {last}");
                    last = tick;
                    stats.Heard(carrier);
                });
            }

            int callsEach = random.Next(20, 120);
            int seed = random.Next();
            await Task.WhenAll(Enumerable.Range(0, InFlightPerClient).Select(i => Task.Run(async () =>
            {
                var mine = new Random(seed + i);
                for (int n = 0; n < callsEach && clock.Elapsed < length; n++) await OneCallAsync(carrier, client, mine, stats, secret);
            })));
            leaving.Now();
            // Half the clients end their subscription themselves; the others leave it to their connection's end.
            if (ticks is not null && random.Next(2) == 0) await ticks.DisposeAsync();
        }
    }

    /// <summary>
    /// Nothing drops a connection on loopback: a client that hears its link end, or reconnects, before it leaves is a
    /// finding. The client says it is leaving with <see cref="Leaving.Now"/>.
    /// </summary>
    private static Leaving WatchLink(IpyRpcClient client, string carrier, Stats stats)
    {
        var leaving = new Leaving();
        client.Disconnected += info =>
        {
            if (!leaving.Is) stats.Wrong(carrier, "link", $"the connection ended: {info.Reason}: {info.Message}");
        };
        client.Reconnecting += attempt => stats.Wrong(carrier, "link", $"reconnecting (attempt {attempt.Attempt}): {attempt.LastError?.Message}");
        return leaving;
    }

    private sealed class Leaving
    {
        private int _leaving;

        public bool Is => Volatile.Read(ref _leaving) == 1;

        public void Now() => Volatile.Write(ref _leaving, 1);
    }

    /// <summary>The soak's idle timeout for connections over HTTP requests.</summary>
    private static readonly TimeSpan QuietTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// One client over HTTP requests, connected all along, that calls now and then, each time after a quiet spell longer
    /// than the idle timeout: its pings must keep its connection (with the secret, the name it proved: a connection lost
    /// and opened again would be a reconnect, which is a finding, and a new one not yet proven would refuse the call).
    /// </summary>
    private static async Task QuietLaneAsync(Uri address, Stats stats, Stopwatch clock, TimeSpan length, bool secret)
    {
        const string carrier = "http-quiet";
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.Requests, Options(carrier, secret, exports: false));
        Interlocked.Increment(ref stats.Connections);
        Leaving leaving = WatchLink(client, carrier, stats);
        var random = new Random(11);
        while (true)
        {
            try
            {
                int a = random.Next(1000), b = random.Next(1000);
                int sum = await client.CallAsync<int>("soak.add", a, b);
                if (sum != a + b) stats.Wrong(carrier, "add", $"{a} + {b} came back {sum}");
                if (secret && await client.CallAsync<string>("soak.whoami") is var who && who != "soak-" + carrier) stats.Wrong(carrier, "add", $"the server says {who} called");
                stats.Count(carrier, "add");
            }
            catch (Exception e)
            {
                stats.Wrong(carrier, "add", $"{e.GetType().Name}: {e.Message}");
            }

            TimeSpan quiet = QuietTimeout * (1.5 + random.NextDouble());
            if (clock.Elapsed + quiet > length) break;
            await Task.Delay(quiet);
        }

        leaving.Now();
    }

    private static async Task OneCallAsync(string carrier, IpyRpcClient client, Random random, Stats stats, bool secret)
    {
        int pick = random.Next(100);
        string kind = secret && pick < 5 ? "who" : pick < 35 ? "add" : pick < 48 ? "echo" : pick < 57 ? "talk" : pick < 64 ? "fail" : pick < 71 ? "stream"
            : pick < 78 ? (carrier == "http-requests" ? "add" : "back") : pick < 84 ? "job" : pick < 90 ? "pointer" : pick < 95 ? "cancel" : "timeout";
        try
        {
            switch (kind)
            {
                case "add":
                {
                    int a = random.Next(-1_000_000, 1_000_000), b = random.Next(-1_000_000, 1_000_000);
                    int sum = await client.CallAsync<int>("soak.add", a, b);
                    if (sum != a + b) stats.Wrong(carrier, kind, $"{a} + {b} came back {sum}");
                    break;
                }
                case "who":
                {
                    // The principal the secret's proof named, on every call of the connection (the HTTP requests carrier
                    // carries it on each request's session).
                    string who = await client.CallAsync<string>("soak.whoami");
                    if (who != "soak-" + carrier) stats.Wrong(carrier, kind, $"the server says {who} called");
                    break;
                }
                case "echo":
                {
                    // Mostly small, now and then a few hundred kilobytes (pooled and sent without a copy).
                    byte[] data = new byte[random.Next(20) == 0 ? random.Next(64 * 1024, 400 * 1024) : random.Next(0, 2048)];
                    random.NextBytes(data);
                    byte[] back = await client.CallAsync<byte[]>("soak.echo", data);
                    if (!back.AsSpan().SequenceEqual(data)) stats.Wrong(carrier, kind, $"{data.Length} bytes came back as {back.Length} different ones");
                    break;
                }
                case "talk":
                {
                    int lines = random.Next(1, 40);
                    var heard = new StringBuilder();
                    int count = await client.CallAsync<int>("soak.talk", [lines], new CallOptions { Output = (_, text) => { lock (heard) heard.Append(text); } });
                    string expected = string.Concat(Enumerable.Range(0, lines).Select(i => $"soak line {i}{Environment.NewLine}"));
                    string got;
                    lock (heard) got = heard.ToString();
                    if (count != lines || got != expected) stats.Wrong(carrier, kind, $"{lines} lines: returned {count}, heard {got.Length} characters against {expected.Length}");
                    break;
                }
                case "stream":
                {
                    // Long enough, now and then, to need the caller's credit on the way.
                    int count = random.Next(8) == 0 ? random.Next(1000, 5000) : random.Next(0, 100), next = 0;
                    await foreach (int item in client.StreamAsync<int>("soak.count", count))
                    {
                        if (item != next++) stats.Wrong(carrier, kind, $"item {next - 1} of {count} came as {item}");
                    }

                    if (next != count) stats.Wrong(carrier, kind, $"{next} items of {count}");
                    break;
                }
                case "job":
                {
                    // Submitted, waited for, and now and then attached to again by its id.
                    int a = random.Next(-1_000_000, 1_000_000), b = random.Next(-1_000_000, 1_000_000);
                    IpyRpcJob<int> job = await client.SubmitAsync<int>("soak.add", a, b);
                    int sum = await job.WaitAsync(TimeSpan.FromMinutes(1));
                    if (sum != a + b) stats.Wrong(carrier, kind, $"job {job.Id}: {a} + {b} came back {sum}");
                    if (random.Next(4) == 0)
                    {
                        int again = await (await client.AttachAsync<int>(job.Id)).WaitAsync(TimeSpan.FromMinutes(1));
                        if (again != a + b) stats.Wrong(carrier, kind, $"job {job.Id} attached again came back {again}");
                    }

                    break;
                }
                case "pointer":
                {
                    // The result stays on the server; a slice of its rows is fetched from there, and the pointer released.
                    int count = random.Next(1, 5000), start = random.Next(count), stop = random.Next(start, count + 1);
                    RemotePointer<double[]> pointer = await client.CallPointerAsync<double[]>("soak.range", count);
                    double[] rows = await client.FetchAsync(pointer, start, stop);
                    if (pointer.Length != count || !rows.SequenceEqual(Enumerable.Range(start, stop - start).Select(i => (double)i)))
                    {
                        stats.Wrong(carrier, kind, $"rows [{start}, {stop}) of {count} (pointer of {pointer.Length}) came back as {rows.Length} others");
                    }

                    await client.ReleaseAsync(pointer);
                    break;
                }
                case "back":
                {
                    int x = random.Next(-1_000_000, 1_000_000);
                    int y = await client.CallAsync<int>("soak.ask_back", x);
                    if (y != 3 * x + 1) stats.Wrong(carrier, kind, $"{x} came back {y}");
                    break;
                }
                case "fail":
                {
                    string message = $"soak failure {random.Next()}";
                    try
                    {
                        await client.CallAsync<int>("soak.fail", message);
                        stats.Wrong(carrier, kind, "no exception");
                    }
                    catch (RemoteException e) when (e.RemoteType == typeof(InvalidOperationException).FullName && e.RemoteMessage == message)
                    {
                    }

                    break;
                }
                case "cancel":
                {
                    // The caller gives up while the function waits; the server's function sees it (the test's end finds none left).
                    using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(random.Next(2, 40)));
                    try
                    {
                        await client.CallAsync<int>("soak.sleep", [60_000], null, cancel.Token);
                        stats.Wrong(carrier, kind, "a cancelled call returned");
                    }
                    catch (OperationCanceledException)
                    {
                    }

                    break;
                }
                case "timeout":
                {
                    try
                    {
                        await client.CallAsync<int>("soak.sleep", [60_000], new CallOptions { Timeout = TimeSpan.FromMilliseconds(random.Next(5, 60)) });
                        stats.Wrong(carrier, kind, "a timed-out call returned");
                    }
                    catch (IpyRpcTimeoutException)
                    {
                    }

                    break;
                }
            }
        }
        catch (Exception e)
        {
            stats.Wrong(carrier, kind, e.GetType().Name + ": " + e.Message);
        }

        stats.Count(carrier, kind);
    }

    /// <summary>
    /// The Python client from samples/python (written from docs/PROTOCOL.md alone, on Debian's pyzmq and msgpack) as one
    /// more lane: its own connections, calls and checks, in a process of its own (tests/…/python/soak_peer.py).
    /// </summary>
    private static async Task<(int ExitCode, string Report)> PythonLaneAsync(string endpoint, TimeSpan length, bool secret)
    {
        string[] args = [endpoint, ((int)length.TotalSeconds).ToString(), .. secret ? [Secret, "soak-python"] : Array.Empty<string>()];
        (int exit, string stdout, string stderr) = await PythonPeer.RunAsync(length + TimeSpan.FromMinutes(2), "soak_peer.py", args);
        return (exit, stdout + stderr);
    }

    /// <summary>
    /// Connects, over and over, with a wrong secret (over ZeroMQ, a WebSocket and HTTP requests) or none (over ZeroMQ):
    /// each attempt must fail at connect with <see cref="IpyRpcUnauthorizedException"/>, in well under the 5 s allowed
    /// here, while the other lanes go on being served.
    /// </summary>
    private static async Task ImpostorLaneAsync(string endpoint, Uri address, Stats stats, Stopwatch clock, TimeSpan length)
    {
        var wrong = new IpyRpcClientOptions { SharedSecret = "not the soak secret", ClientName = "impostor" };
        var attempts = new (string Kind, Func<CancellationToken, Task<IpyRpcClient>> Connect)[]
        {
            ("zeromq-tcp wrong secret", token => IpyRpcZeroMqClient.ConnectAsync(endpoint, wrong, cancellationToken: token)),
            ("zeromq-tcp no secret", token => IpyRpcZeroMqClient.ConnectAsync(endpoint, cancellationToken: token)),
            ("websocket wrong secret", token => IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.WebSocket, wrong, cancellationToken: token)),
            ("http-requests wrong secret", token => IpyRpcHttpClient.ConnectAsync(address, HttpCarrier.Requests, wrong, cancellationToken: token)),
        };
        for (int n = 0; clock.Elapsed < length; n++)
        {
            (string kind, Func<CancellationToken, Task<IpyRpcClient>> connect) = attempts[n % attempts.Length];
            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await using IpyRpcClient client = await connect(patience.Token);
                stats.Wrong("impostor", kind, "connected");
            }
            catch (IpyRpcUnauthorizedException)
            {
            }
            catch (Exception e)
            {
                stats.Wrong("impostor", kind, e.GetType().Name + ": " + e.Message);
            }

            stats.Count("impostor", kind);
            await Task.Delay(10);
        }
    }

    private static async Task JsonRpcLaneAsync(Uri address, Stats stats, Stopwatch clock, TimeSpan length, bool secret)
    {
        var random = new Random(7);
        while (clock.Elapsed < length)
        {
            using var http = new HttpClient { BaseAddress = address };
            Interlocked.Increment(ref stats.Connections);
            int callsEach = random.Next(20, 120);
            int seed = random.Next();
            await Task.WhenAll(Enumerable.Range(0, InFlightPerClient).Select(i => Task.Run(async () =>
            {
                var mine = new Random(seed + i);
                for (int n = 0; n < callsEach && clock.Elapsed < length; n++) await OneJsonRpcCallAsync(http, mine, stats, secret);
            })));
        }
    }

    /// <summary>One JSON-RPC request; to a server that requires a shared secret (which JSON-RPC cannot prove), refused.</summary>
    private static async Task OneJsonRpcCallAsync(HttpClient http, Random random, Stats stats, bool secret)
    {
        int pick = random.Next(100);
        string call = pick < 80 ? "add" : pick < 92 ? "fail" : "unknown", kind = secret ? "refused" : call;
        int id = random.Next();
        int a = random.Next(-1_000_000, 1_000_000), b = random.Next(-1_000_000, 1_000_000);
        object request = call switch
        {
            "add" => new { jsonrpc = "2.0", method = "soak.add", @params = new[] { a, b }, id },
            "fail" => new { jsonrpc = "2.0", method = "soak.fail", @params = new[] { $"soak failure {a}" }, id },
            _ => (object)new { jsonrpc = "2.0", method = "soak.nothing_here", @params = Array.Empty<int>(), id },
        };
        try
        {
            using HttpResponseMessage response = await http.PostAsJsonAsync("rpc", request);
            using JsonDocument reply = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            JsonElement root = reply.RootElement;
            bool right = root.GetProperty("id").GetInt32() == id && kind switch
            {
                "refused" => root.GetProperty("error").GetProperty("code").GetInt32() == -32004,
                "add" => root.GetProperty("result").GetInt32() == a + b,
                "fail" => root.GetProperty("error").GetProperty("message").GetString()!.Contains($"soak failure {a}"),
                _ => root.GetProperty("error").GetProperty("code").GetInt32() == -32601,
            };
            if (!right) stats.Wrong("jsonrpc", kind, root.GetRawText());
        }
        catch (Exception e)
        {
            stats.Wrong("jsonrpc", kind, e.GetType().Name + ": " + e.Message);
        }

        stats.Count("jsonrpc", kind);
    }

    /// <summary>
    /// Reads the server's events from its HTTP event stream (GET /events) a while, then goes and comes back with the last
    /// id it had (Last-Event-ID), over and over: the ticks heard across all the connections must follow one another
    /// without a gap or a repeat, except where the stream said events were dropped or missed; a server that requires a
    /// shared secret, which the stream cannot prove, refuses it every time with 401.
    /// </summary>
    private static async Task EventStreamLaneAsync(Uri address, Stats stats, Stopwatch clock, TimeSpan length, bool secret)
    {
        var random = new Random(11);
        using var http = new HttpClient { BaseAddress = address };
        string? lastId = null;
        long last = -1;
        bool gap = true; // the first tick may be any
        while (clock.Elapsed < length)
        {
            Interlocked.Increment(ref stats.Connections);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, "events?pattern=soak.*");
                bool resuming = lastId is not null;
                if (resuming) request.Headers.Add("Last-Event-ID", lastId);
                using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                if (secret)
                {
                    bool refused = response.StatusCode == System.Net.HttpStatusCode.Unauthorized
                        && JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString() == "unauthorized";
                    if (!refused) stats.Wrong("event-stream", "refused", $"HTTP {(int)response.StatusCode}");
                    stats.Count("event-stream", "refused");
                    await Task.Delay(20);
                    continue;
                }

                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                string? name = null, id = null;
                for (int events = random.Next(20, 200); events > 0 && clock.Elapsed < length;)
                {
                    string? line = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
                    if (line is null) break;
                    if (line.StartsWith("id: ", StringComparison.Ordinal)) id = line[4..];
                    if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
                    if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                    if (name is "ipyrpc.dropped" or "ipyrpc.missed")
                    {
                        gap = true;
                        stats.Count("event-stream", name[7..]);
                    }

                    if (id is not null) lastId = id;
                    id = null;
                    if (name != "soak.ticked") continue;
                    long tick = long.Parse(line[6..]);
                    if (tick <= last || (!gap && tick != last + 1)) stats.Wrong("event-stream", "event", $"tick {tick} after {last}");
                    last = tick;
                    gap = false;
                    events--;
                    stats.Count("event-stream", "event");
                }

                if (resuming) stats.Count("event-stream", "resumed");
            }
            catch (Exception e)
            {
                stats.Wrong("event-stream", secret ? "refused" : "event", e.GetType().Name + ": " + e.Message);
            }
        }
    }

    /// <summary>
    /// One WebSocket client through a proxy that drops its connection every few hundred milliseconds: it reconnects each
    /// time and its subscription resumes, hearing what was published meanwhile. The ticks it hears follow one another
    /// without a gap or a repeat, except right after the subscription told a gap (the server keeps its last 256 events)
    /// or counted events dropped.
    /// </summary>
    private static async Task ResumeLaneAsync(Uri address, Stats stats, Stopwatch clock, TimeSpan length, bool secret)
    {
        const string carrier = "websocket-resume";
        await using var proxy = TcpProxy.Start(address.Port);
        var through = new UriBuilder(address) { Port = proxy.Port }.Uri;
        IpyRpcClientOptions options = Options(carrier, secret) with { Reconnect = new ReconnectOptions { FirstDelay = TimeSpan.FromMilliseconds(20), MaxDelay = TimeSpan.FromMilliseconds(200) } };
        await using IpyRpcClient client = await IpyRpcHttpClient.ConnectAsync(through, HttpCarrier.WebSocket, options);
        Interlocked.Increment(ref stats.Connections);
        client.Reconnected += () => stats.ByKind.AddOrUpdate($"{carrier} resumed", 1, (_, n) => n + 1);
        IpyRpcSubscription? subscription = null;
        long last = -1, gapsSeen = 0, droppedSeen = 0;
        subscription = await client.SubscribeAsync(SoakEvents.Ticked, tick =>
        {
            (long gaps, long dropped) = Volatile.Read(ref subscription) is { } s ? (s.Gaps, s.Dropped) : (0, 0);
            if (tick <= last || (last >= 0 && tick != last + 1 && gaps == gapsSeen && dropped == droppedSeen)) stats.Wrong(carrier, "event", $"tick {tick} after {last}");
            (last, gapsSeen, droppedSeen) = (tick, gaps, dropped);
            stats.Heard(carrier);
        });
        var random = new Random(13);
        while (clock.Elapsed < length)
        {
            await Task.Delay(random.Next(100, 600));
            proxy.CloseAll();
        }

        ByKind(stats, carrier, "replayed", subscription.Replayed);
        ByKind(stats, carrier, "gaps", subscription.Gaps);
    }

    private static void ByKind(Stats stats, string carrier, string kind, long count) => stats.ByKind[$"{carrier} {kind}"] = (int)count;

    private static async Task<bool> EventuallyAsync(Func<bool> condition) => await EventuallyAsync(() => Task.FromResult(condition()));

    private static async Task<bool> EventuallyAsync(Func<Task<bool>> condition)
    {
        for (var clock = Stopwatch.StartNew(); clock.Elapsed < TimeSpan.FromSeconds(20); await Task.Delay(50))
        {
            if (await condition()) return true;
        }

        return await condition();
    }

    private sealed class Stats
    {
        public int Connections;
        private int _calls;

        public int Calls => Volatile.Read(ref _calls);

        public ConcurrentDictionary<string, int> ByKind { get; } = new();

        public ConcurrentQueue<string> Errors { get; } = new();

        public void Count(string carrier, string kind)
        {
            Interlocked.Increment(ref _calls);
            ByKind.AddOrUpdate($"{carrier} {kind}", 1, (_, n) => n + 1);
        }

        public void Heard(string carrier) => ByKind.AddOrUpdate($"{carrier} event", 1, (_, n) => n + 1);

        public void Wrong(string carrier, string kind, string what) => Errors.Enqueue($"{carrier} {kind}: {what}");
    }

    /// <summary>This process's threads, heap and open descriptors (other than files): their start, their peaks, and bounds on their growth.</summary>
    private sealed class Watch
    {
        public long Heap { get; } = GC.GetTotalMemory(forceFullCollection: true);

        public int Threads { get; } = ThreadsNow();

        public int Descriptors { get; } = DescriptorsNow();

        public long PeakHeap { get; private set; }

        public int PeakThreads { get; private set; }

        public int PeakDescriptors { get; private set; }

        /// <summary>
        /// The open descriptors that are not files: sockets, pipes, event and epoll descriptors, what a connection or a
        /// socket left open would leave (the runtime keeps each assembly it loads open as a file, and loads some as it goes).
        /// </summary>
        public static int DescriptorsNow() => Directory.GetFiles("/proc/self/fd").Count(fd => new FileInfo(fd).LinkTarget is { } target && !target.StartsWith('/'));

        /// <summary>What the open descriptors that are not files are, counted by kind (sockets, pipes, event and epoll descriptors).</summary>
        public static string DescriptorKinds() => string.Join(", ", Directory.GetFiles("/proc/self/fd")
            .Select(fd => new FileInfo(fd).LinkTarget ?? "?")
            .Where(target => !target.StartsWith('/'))
            .GroupBy(target => target.Split(':', '[')[0] + (target.StartsWith("anon_inode") ? target[target.IndexOf(':')..] : ""))
            .OrderByDescending(g => g.Count())
            .Select(g => $"{g.Key} {g.Count()}"));

        public void Check(int calls)
        {
            long heap = GC.GetTotalMemory(forceFullCollection: true);
            int threads = ThreadsNow(), descriptors = DescriptorsNow();
            PeakHeap = Math.Max(PeakHeap, heap);
            PeakThreads = Math.Max(PeakThreads, threads);
            PeakDescriptors = Math.Max(PeakDescriptors, descriptors);
            Assert.True(heap - Heap < RetentionBytes + 128L * 1024 * 1024, $"the heap grew from {Heap / 1048576} MiB to {heap / 1048576} MiB after {calls} calls");
            Assert.True(threads - Threads < 64, $"threads grew from {Threads} to {threads} after {calls} calls");
            Assert.True(descriptors - Descriptors < 512, $"descriptors (not files) grew from {Descriptors} to {descriptors} after {calls} calls");
        }

        private static int ThreadsNow()
        {
            using var self = Process.GetCurrentProcess();
            return self.Threads.Count;
        }
    }
}

/// <summary>The soak runs alone: the threads, heap and descriptors it watches are the whole process's.</summary>
[CollectionDefinition(nameof(SoakCollection), DisableParallelization = true)]
public sealed class SoakCollection;
