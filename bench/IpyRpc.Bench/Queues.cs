using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using IpyRpc.Jobs;
using IpyRpc.Redis;
using Microsoft.Data.Sqlite;
using StackExchange.Redis;

namespace IpyRpc.Bench;

/// <summary>
/// The job queues, each beside the floor of its own store measured in the same run: a small call
/// through an IpyRpc server whose jobs go through the queue, against the raw store operations a
/// queue cannot do without (a SQLite insert + select + delete transaction; a Redis XADD +
/// XREADGROUP + XACK round trip). And the in-memory queue alone, with a function that does nothing.
/// </summary>
internal static class Queues
{
    public static async Task RunAsync(Settings settings, List<BenchResult> results)
    {
        string folder = Directory.CreateTempSubdirectory("ipyrpc-bench-queues-").FullName;
        await using PrivateRedis? redis = await PrivateRedis.TryStartAsync(folder);
        var systems = new List<SystemUnderTest>();
        try
        {
            systems.Add(InMemoryQueueOnly());
            systems.Add(await ServerOverAsync("ipyrpc-inproc-memory", new InMemoryJobQueue(), worker: null));
            // Each file in a folder of its own: a queue object watches its file's folder for other processes' writes.
            systems.Add(await ServerOverAsync("ipyrpc-inproc-sqlite", new SqliteJobQueue(Path.Combine(Directory.CreateDirectory(Path.Combine(folder, "inproc")).FullName, "queue.db")), worker: null));
            systems.Add(RawSqlite(Path.Combine(Directory.CreateDirectory(Path.Combine(folder, "raw")).FullName, "raw.db")));
            // A worker process of its own on the same file: the server only takes calls, as with Redis below.
            string shared = Path.Combine(Directory.CreateDirectory(Path.Combine(folder, "shared")).FullName, "shared.db");
            systems.Add(await WorkerProcessesAsync("ipyrpc-worker-sqlite", new SqliteJobQueue(shared), ["sqlite:" + shared, "ipyrpc-worker-sqlite"], 1));
            if (redis is not null)
            {
                // The worker has a queue object (a connection) of its own, as a worker process would.
                RedisJobQueue serverSide = await RedisJobQueue.ConnectAsync(redis.Configuration, new RedisJobQueueOptions { Name = "bench" });
                RedisJobQueue workerSide = await RedisJobQueue.ConnectAsync(redis.Configuration, new RedisJobQueueOptions { Name = "bench" });
                systems.Add(await ServerOverAsync("ipyrpc-inproc-redis", serverSide, workerSide));
                // Workers as production runs them: processes of their own; with three, every job has more than one taker.
                systems.Add(await WorkerProcessesAsync("ipyrpc-worker-redis", redis.Configuration, 1));
                systems.Add(await WorkerProcessesAsync("ipyrpc-3workers-redis", redis.Configuration, 3));
                systems.Add(await RawRedisAsync(redis.Configuration));
            }
            else
            {
                foreach (string name in new[] { "ipyrpc-inproc-redis", "ipyrpc-worker-redis", "ipyrpc-3workers-redis" })
                {
                    results.Add(new BenchResult("queue-call", name, 0, 1, null, null, null, null) { Note = "not measured: no redis-server (apt-get install redis-server)" });
                }
            }

            foreach (SystemUnderTest s in systems)
            {
                Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] queue warm-up: {s.Name}");
                for (int i = 0; i < settings.Warmup; i++) await s.SmallCall();
            }

            var samples = systems.ToDictionary(s => s.Name, _ => new List<long>());
            int rounds = settings.Mode == "smoke" ? 1 : 5;
            for (int round = 0; round < rounds; round++)
            {
                Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] queue latency, round {round + 1} of {rounds}");
                foreach (SystemUnderTest s in systems) samples[s.Name].AddRange(await Measure.SamplesAsync(s.SmallCall, settings.LatencyCalls / rounds / 2));
            }

            foreach (SystemUnderTest s in systems)
            {
                (double p50, double p99) = Measure.Percentiles([.. samples[s.Name]]);
                results.Add(new BenchResult("queue-call", s.Name, 0, 1, p50, p99, 1_000_000 / p50, null));
            }

            var rates = systems.ToDictionary(s => s.Name, _ => new List<double>());
            for (int round = 0; round < (settings.Mode == "smoke" ? 1 : 3); round++)
            {
                Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] queue throughput at 16 in flight, round {round + 1}");
                foreach (SystemUnderTest s in systems) rates[s.Name].Add(await Measure.ThroughputAsync(s.SmallCall, 16, settings.ThroughputCalls / 2));
            }

            foreach (SystemUnderTest s in systems)
            {
                double[] sorted = [.. rates[s.Name].Order()];
                results.Add(new BenchResult("queue-call", s.Name, 0, 16, null, null, sorted[sorted.Length / 2], null));
            }
        }
        finally
        {
            foreach (SystemUnderTest s in systems) await s.DisposeAsync();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The in-memory queue with nothing else: submit, a worker takes it and runs a function that does nothing, the outcome comes back.</summary>
    private static SystemUnderTest InMemoryQueueOnly()
    {
        var queue = new InMemoryJobQueue();
        var worker = new JobWorker(queue, new NothingExecutor(), new JobWorkerOptions { Concurrency = 16 });
        worker.Start();
        var request = new JobRequest { Function = "nothing", Arguments = new byte[] { 0x90 } };
        return new SystemUnderTest
        {
            Name = "queue-memory-alone",
            SmallCall = async () =>
            {
                var done = new Completion();
                await queue.SubmitAsync(request, done);
                await done.Task;
            },
            Dispose = async () =>
            {
                await queue.DisposeAsync();
                await worker.DisposeAsync();
            },
        };
    }

    private static async Task<SystemUnderTest> ServerOverAsync(string name, IJobQueue queue, IJobQueue? worker)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = worker is null ? 16 : 0, MaxCallsInFlightPerConnection = 1024 });
        server.Register(typeof(BenchFunctions));
        IpyRpcWorker? remote = worker is null ? null : new IpyRpcWorker(worker, new IpyRpcWorkerOptions { Concurrency = 16 }).Register(typeof(BenchFunctions)).Start();
        IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        BenchFunctionsClient f = client.Proxy<BenchFunctionsClient>();
        return new SystemUnderTest
        {
            Name = name,
            SmallCall = () => f.Add(2, 3),
            Dispose = async () =>
            {
                await client.DisposeAsync();
                if (remote is not null) await remote.DisposeAsync();
                await server.DisposeAsync();
                if (worker is not null) await worker.DisposeAsync();
            },
        };
    }

    /// <summary>
    /// A server whose calls go through a Redis queue to <paramref name="count"/> worker processes (this
    /// program's <c>worker</c> mode), each with 16 calls at a time.
    /// </summary>
    private static async Task<SystemUnderTest> WorkerProcessesAsync(string name, string configuration, int count)
        => await WorkerProcessesAsync(name, await RedisJobQueue.ConnectAsync(configuration, new RedisJobQueueOptions { Name = name }), [configuration, name], count);

    /// <summary>
    /// A server whose calls go through <paramref name="queue"/> to <paramref name="count"/> worker processes (this program's
    /// <c>worker</c> mode, given <paramref name="workerArguments"/>), each with 16 calls at a time.
    /// </summary>
    private static async Task<SystemUnderTest> WorkerProcessesAsync(string name, IJobQueue queue, string[] workerArguments, int count)
    {
        var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = queue, Concurrency = 0, MaxCallsInFlightPerConnection = 1024 });
        server.Register(typeof(BenchFunctions));
        var workers = new List<Process>();
        for (int i = 0; i < count; i++)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string a in (string[])[typeof(Queues).Assembly.Location, "worker", .. workerArguments]) start.ArgumentList.Add(a);
            Process process = Process.Start(start)!;
            workers.Add(process);
            string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            if (line != "READY") throw new InvalidOperationException($"The benchmark's worker process said {line ?? "nothing"} instead of READY.");
        }

        IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        BenchFunctionsClient f = client.Proxy<BenchFunctionsClient>();
        return new SystemUnderTest
        {
            Name = name,
            SmallCall = () => f.Add(2, 3),
            Processes = [.. workers.Select(p => p.Id)],
            Dispose = async () =>
            {
                await client.DisposeAsync();
                foreach (Process p in workers)
                {
                    p.StandardInput.Close();
                    if (!p.WaitForExit(15_000)) p.Kill();
                    p.Dispose();
                }

                await server.DisposeAsync();
                await queue.DisposeAsync();
            },
        };
    }

    /// <summary>The loop's <c>redis</c> mode: <paramref name="count"/> small calls, <paramref name="inFlight"/> at a time, through <paramref name="workers"/> worker processes.</summary>
    public static async Task<int> LoopAsync(int count, int inFlight, int workers)
    {
        string folder = Directory.CreateTempSubdirectory("ipyrpc-bench-loop-").FullName;
        try
        {
            await using PrivateRedis redis = await PrivateRedis.TryStartAsync(folder) ?? throw new InvalidOperationException("No redis-server here (apt-get install redis-server).");
            await using SystemUnderTest system = await WorkerProcessesAsync("loop", redis.Configuration, workers);
            int warmUp = Math.Min(count, 5_000);
            await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async lane =>
            {
                for (int i = lane; i < warmUp; i += inFlight) await system.SmallCall();
            }));
            await Task.Delay(500);
            int[] pids = [Environment.ProcessId, .. system.Processes, redis.Id];
            ProcessCost?[] before = [.. pids.Select(ProcessCost.Read)];
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async lane =>
            {
                for (int i = lane; i < count; i += inFlight) await system.SmallCall();
            }));
            Console.WriteLine($"{count} small calls (a Redis queue, {workers} worker process{(workers == 1 ? "" : "es")}, {inFlight} in flight): {count / clock.Elapsed.TotalSeconds:0} calls/s, {clock.Elapsed.TotalMilliseconds * 1000 / count:0.0} µs each on average");
            for (int i = 0; i < pids.Length; i++)
            {
                string who = i == 0 ? "caller (server and client)" : i == pids.Length - 1 ? "redis-server" : $"worker {i}";
                Console.WriteLine($"  {who}: {ProcessCost.PerCall(before[i], ProcessCost.Read(pids[i]), count)}");
            }

            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// The <c>worker</c> mode: an <see cref="IpyRpcWorker"/> on a Redis queue (<paramref name="configuration"/>) or on a
    /// SQLite file (<c>sqlite:PATH</c>), until its standard input closes.
    /// </summary>
    public static async Task<int> RunWorkerAsync(string configuration, string queueName)
    {
        await using IJobQueue queue = configuration.StartsWith("sqlite:", StringComparison.Ordinal)
            ? new SqliteJobQueue(configuration["sqlite:".Length..])
            : await RedisJobQueue.ConnectAsync(configuration, new RedisJobQueueOptions { Name = queueName });
        await using IpyRpcWorker worker = new IpyRpcWorker(queue, new IpyRpcWorkerOptions { Concurrency = 16 }).Register(typeof(BenchFunctions)).Start();
        Console.WriteLine("READY");
        Console.Out.Flush();
        while (await Console.In.ReadLineAsync() is not null)
        {
        }

        return 0;
    }

    /// <summary>The SQLite floor: one transaction that inserts a row, reads it back and deletes it, on the same kind of file (WAL, synchronous=NORMAL).</summary>
    private static SystemUnderTest RawSqlite(string path)
    {
        SQLitePCL.Batteries_V2.Init();
        var db = new SqliteConnection($"Data Source={path};Pooling=False");
        db.Open();
        using (SqliteCommand setup = db.CreateCommand())
        {
            setup.CommandText = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB);";
            setup.ExecuteNonQuery();
        }

        var gate = new object();
        SqliteCommand insert = db.CreateCommand(), select = db.CreateCommand(), delete = db.CreateCommand();
        insert.CommandText = "INSERT INTO t (body) VALUES ($b) RETURNING id";
        insert.Parameters.AddWithValue("$b", new byte[] { 0x92, 2, 3 });
        select.CommandText = "SELECT body FROM t WHERE id = $id";
        SqliteParameter selectId = select.Parameters.Add("$id", SqliteType.Integer);
        delete.CommandText = "DELETE FROM t WHERE id = $id";
        SqliteParameter deleteId = delete.Parameters.Add("$id", SqliteType.Integer);
        return new SystemUnderTest
        {
            Name = "raw-sqlite-transaction",
            SmallCall = () =>
            {
                lock (gate)
                {
                    using SqliteTransaction tx = db.BeginTransaction(deferred: false);
                    insert.Transaction = select.Transaction = delete.Transaction = tx;
                    long id = (long)insert.ExecuteScalar()!;
                    selectId.Value = deleteId.Value = id;
                    if (select.ExecuteScalar() is not byte[]) throw new InvalidOperationException("The row was not there.");
                    delete.ExecuteNonQuery();
                    tx.Commit();
                }

                return Task.CompletedTask;
            },
            Dispose = () =>
            {
                insert.Dispose();
                select.Dispose();
                delete.Dispose();
                db.Dispose();
                return default;
            },
        };
    }

    /// <summary>The Redis floor: what a stream queue cannot do without, one round trip after another: XADD, XREADGROUP, XACK.</summary>
    private static async Task<SystemUnderTest> RawRedisAsync(string configuration)
    {
        ConnectionMultiplexer redis = await ConnectionMultiplexer.ConnectAsync(configuration);
        IDatabase db = redis.GetDatabase();
        await db.ExecuteAsync("XGROUP", "CREATE", "raw", "g", "0", "MKSTREAM");
        return new SystemUnderTest
        {
            Name = "raw-redis-xadd-xreadgroup-xack",
            SmallCall = async () =>
            {
                await db.ExecuteAsync("XADD", "raw", "*", "id", "job");
                var read = (RedisResult[])(await db.ExecuteAsync("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "raw", ">"))!;
                // RESP3 (what StackExchange.Redis 3 speaks to Redis 7) answers a map {stream: entries}; RESP2 [[stream, entries]].
                RedisResult entries = read[0].Resp2Type == ResultType.Array ? ((RedisResult[])read[0]!)[1] : read[1];
                var entry = (RedisResult[])((RedisResult[])entries!)[0]!;
                await db.ExecuteAsync("XACK", "raw", "g", (string)entry[0]!);
            },
            Dispose = async () => await redis.CloseAsync(),
        };
    }

    private sealed class NothingExecutor : IJobExecutor
    {
        private static readonly JobOutcome Done = JobOutcome.Success(new byte[] { 0xc0 }, Serialization.MessagePack);

        public ValueTask<JobOutcome> ExecuteAsync(JobRequest request, IJobOutput output, CancellationToken cancellationToken) => new(Done);
    }

    private sealed class Completion : TaskCompletionSource, IJobObserver
    {
        public Completion() : base(TaskCreationOptions.RunContinuationsAsynchronously)
        {
        }

        public void OnAccepted(string jobId)
        {
        }

        public void OnEvent(in JobEvent jobEvent)
        {
            if (jobEvent.Kind == JobEventKind.Completed) TrySetResult();
        }
    }

    /// <summary>A redis-server of the benchmark's own on a free loopback port; none when it is not installed.</summary>
    private sealed class PrivateRedis : IAsyncDisposable
    {
        private readonly Process _process;

        private PrivateRedis(Process process, int port)
        {
            _process = process;
            Configuration = $"127.0.0.1:{port}";
        }

        public string Configuration { get; }

        public int Id => _process.Id;

        public static async Task<PrivateRedis?> TryStartAsync(string folder)
        {
            if (!File.Exists("/usr/bin/redis-server")) return null;
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var start = new ProcessStartInfo("/usr/bin/redis-server") { RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string a in new[] { "--port", port.ToString(), "--bind", "127.0.0.1", "--dir", folder, "--appendonly", "yes", "--save", "" }) start.ArgumentList.Add(a);
            Process process = Process.Start(start)!;
            while (await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)) is { } line)
            {
                if (line.Contains("Ready to accept connections", StringComparison.Ordinal))
                {
                    _ = process.StandardOutput.ReadToEndAsync();
                    return new PrivateRedis(process, port);
                }
            }

            return null;
        }

        public ValueTask DisposeAsync()
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit();
            _process.Dispose();
            return default;
        }
    }
}
