using System.Diagnostics;
using IpyRpc.Http;

namespace IpyRpc.Bench;

/// <summary>The events of the benchmark.</summary>
public static class BenchEvents
{
    /// <summary>A tick: a number.</summary>
    [IpyRpcEvent] public static readonly IpyRpcEvent<long> Ticked = new("bench.ticked");
}

/// <summary>
/// Events: how many a second four in-process subscribers each hear, from a server that keeps no event history
/// (<c>EventHistory = 0</c>), from one that keeps its latest events for subscriptions that resume after a reconnect (the
/// default: every event numbered and its MessagePack kept as it is published), and from one served over HTTP too (whose
/// event stream shares that history), measured in turns in the same run. At most 256 events wait
/// for the slowest subscriber, so none is dropped and the rate is one the subscribers keep up with.
/// </summary>
internal static class EventsBench
{
    private const int Subscribers = 4;
    private const int Window = 256;

    public static async Task RunAsync(Settings settings, List<BenchResult> results)
    {
        var systems = new List<Publisher>();
        try
        {
            systems.Add(await Publisher.StartAsync("events-no-history", history: false, http: false));
            systems.Add(await Publisher.StartAsync("events-history", history: true, http: false));
            systems.Add(await Publisher.StartAsync("events-history-http", history: true, http: true));
            int count = settings.Mode == "smoke" ? 200 : settings.ThroughputCalls * 2;
            foreach (Publisher p in systems) await p.RunAsync(Math.Min(count, 1000)); // warm-up
            var rates = systems.ToDictionary(s => s.Name, _ => new List<double>());
            int rounds = settings.Mode == "smoke" ? 1 : 5;
            for (int round = 0; round < rounds; round++)
            {
                Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] events to {Subscribers} subscribers, round {round + 1} of {rounds}");
                foreach (Publisher p in systems) rates[p.Name].Add(await p.RunAsync(count));
            }

            foreach (Publisher p in systems)
            {
                double[] sorted = [.. rates[p.Name].Order()];
                results.Add(new BenchResult("events", p.Name, 0, Subscribers, null, null, sorted[sorted.Length / 2], null));
            }
        }
        finally
        {
            foreach (Publisher p in systems) await p.DisposeAsync();
        }
    }

    private sealed class Publisher : IAsyncDisposable
    {
        private readonly long[] _heard = new long[Subscribers];
        private readonly List<IpyRpcClient> _clients = [];
        private IpyRpcServer _server = null!;
        private IpyRpcHttpServer? _host;
        private long _tick;

        public string Name { get; private init; } = "";

        public static async Task<Publisher> StartAsync(string name, bool history, bool http)
        {
            var p = new Publisher { Name = name };
            p._server = new IpyRpcServer(new IpyRpcServerOptions { EventHistory = history ? 256 : 0 });
            p._server.Register(typeof(BenchEvents));
            if (http) p._host = await IpyRpcHttpServer.StartAsync(p._server); // maps the event stream, whose history keeps JSON too
            for (int i = 0; i < Subscribers; i++)
            {
                int slot = i;
                IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(p._server);
                p._clients.Add(client);
                await client.SubscribeAsync(BenchEvents.Ticked, _ => Interlocked.Increment(ref p._heard[slot]));
            }

            return p;
        }

        /// <summary>Publishes <paramref name="count"/> events, never more than the window ahead of the slowest subscriber; returns events a second.</summary>
        public async Task<double> RunAsync(int count)
        {
            long start = Slowest();
            long target = start + count;
            var clock = Stopwatch.StartNew();
            for (long published = start; published < target;)
            {
                if (published - Slowest() >= Window)
                {
                    await Task.Yield();
                    continue;
                }

                _server.Publish(BenchEvents.Ticked, _tick++);
                published++;
            }

            var giveUp = Stopwatch.StartNew();
            while (Slowest() < target)
            {
                if (giveUp.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"{Name}: the subscribers heard {Slowest() - start} of {count} events.");
                await Task.Yield();
            }

            return count / clock.Elapsed.TotalSeconds;
        }

        private long Slowest()
        {
            long least = long.MaxValue;
            for (int i = 0; i < Subscribers; i++) least = Math.Min(least, Volatile.Read(ref _heard[i]));
            return least;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (IpyRpcClient c in _clients) await c.DisposeAsync();
            if (_host is not null) await _host.DisposeAsync();
            await _server.DisposeAsync();
        }
    }
}
