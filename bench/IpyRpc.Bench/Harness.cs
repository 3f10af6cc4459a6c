using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.NoEmit;

namespace IpyRpc.Bench;

/// <summary>How much to measure: <c>--quick</c> (about three minutes), the full run, or <c>--smoke</c> (seconds; only proves it runs).</summary>
internal sealed record Settings(string Mode, int Warmup, int LatencyCalls, int ThroughputCalls, Func<long, int> PayloadCalls, int PythonCalls)
{
    /// <summary>The small-call systems to measure (<c>--systems</c>), or <see langword="null"/> for all.</summary>
    public string[]? Systems { get; init; }

    public static Settings From(string[] args) =>
        args.Contains("--smoke") ? new("smoke", 5, 20, 40, size => size >= 1 << 20 ? 1 : 3, 20)
        : args.Contains("--quick") ? new("quick", 300, 2_000, 4_000, size => size switch { >= 64 << 20 => 3, >= 1 << 20 => 20, >= 64 << 10 => 200, _ => 1_000 }, 1_000)
        : new("full", 2_000, 20_000, 40_000, size => size switch { >= 64 << 20 => 10, >= 1 << 20 => 100, >= 64 << 10 => 1_000, _ => 10_000 }, 5_000);
}

/// <summary>Runs the scenarios, prints the markdown table and ratios, writes the JSON report.</summary>
internal static class Harness
{
    private static readonly long[] PayloadSizes = [8, 1024, 64 * 1024, 1024 * 1024, 64 * 1024 * 1024];
    private static readonly string[] AllScenarios = ["small", "payload", "pointers", "queues", "events", "serialization", "python"];

    public static async Task<int> RunAsync(string[] args)
    {
        Settings settings = Settings.From(args);
        string? jsonPath = Option(args, "--json");
        string[] chosen = [.. args.Where(a => AllScenarios.Contains(a))];
        if (chosen.Length == 0) chosen = AllScenarios;
        string? repeatText = Option(args, "--repeat");
        string? systemsText = Option(args, "--systems");
        foreach (string unknown in args.Where(a => !a.StartsWith("--", StringComparison.Ordinal) && a != jsonPath && a != repeatText && a != systemsText && !AllScenarios.Contains(a)))
        {
            Console.Error.WriteLine($"Unknown scenario '{unknown}'; choose from {string.Join(", ", AllScenarios)}.");
            return 2;
        }

        int repeat = 1;
        if (repeatText is not null && (!int.TryParse(repeatText, out repeat) || repeat < 1))
        {
            Console.Error.WriteLine($"--repeat takes a number of runs (1 or more), not '{repeatText}'.");
            return 2;
        }

        // --systems a,b: the small-call scenario measures only these systems (e.g. one and its floor, for a closer look)
        if (systemsText is not null) settings = settings with { Systems = [.. systemsText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)] };
        var results = new List<BenchResult>();
        var perRun = new List<List<Ratio>>();
        MachineInfo machine = Machine(settings.Mode);
        Console.WriteLine($"IpyRpc benchmarks ({settings.Mode}{(repeat > 1 ? $", {repeat} runs" : "")}) on {machine.Cpu}, {machine.Cores} cores, {machine.Os}, .NET {machine.Dotnet}, libzmq {machine.Libzmq}");
        for (int run = 1; run <= repeat; run++)
        {
            if (repeat > 1) Progress($"run {run} of {repeat}");
            var runResults = new List<BenchResult>();
            try
            {
                await RunOnceAsync(chosen, settings, runResults);
            }
            catch (UnknownSystemException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }

            perRun.Add(Ratios(runResults));
            results.AddRange(runResults.Select(r => r with { Run = run }));
        }

        // One noisy run cannot decide a target: each ratio is the median of the runs' ratios.
        List<Ratio> ratios = [.. perRun[0].Select((first, i) => Median(first, [.. perRun.Select(r => r[i])]))];
        Console.WriteLine();
        Console.WriteLine(Markdown([.. results.Where(r => r.Run == repeat)], ratios, repeat));
        if (jsonPath is not null)
        {
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new BenchReport(machine, results, ratios), BenchReportJson.Default.BenchReport));
            Console.WriteLine($"Wrote {jsonPath}");
        }

        return 0;
    }

    private static Ratio Median(Ratio first, List<Ratio> runs)
    {
        static double? Mid(IEnumerable<double?> values)
        {
            double[] known = [.. values.Where(v => v is not null).Select(v => v!.Value).Order()];
            return known.Length == 0 ? null : known.Length % 2 == 1 ? known[known.Length / 2] : (known[(known.Length / 2) - 1] + known[known.Length / 2]) / 2;
        }

        double? value = Mid(runs.Select(r => r.Value));
        double bound = first.Target.Length == 0 ? 0 : double.Parse(first.Target.TrimStart('<', '>', '=', ' '), CultureInfo.InvariantCulture);
        bool lowerIsBetter = first.Target.StartsWith('<');
        return first with
        {
            Value = value is null ? null : Math.Round(value.Value, 3),
            P99 = Mid(runs.Select(r => r.P99)) is { } p99 ? Math.Round(p99, 3) : null,
            Met = value is null || first.Target.Length == 0 ? null : lowerIsBetter ? value <= bound : value >= bound,
            Runs = [.. runs.Select(r => r.Value)],
        };
    }

    private static async Task RunOnceAsync(string[] chosen, Settings settings, List<BenchResult> results)
    {
        if (chosen.Contains("small") || chosen.Contains("payload") || chosen.Contains("pointers"))
        {
            await using ServerProcess server = await ServerProcess.StartAsync();
            if (chosen.Contains("small")) await SmallCallsAsync(server, settings, results);
            if (chosen.Contains("payload")) await PayloadsAsync(server.Endpoints, settings, results);
            if (chosen.Contains("pointers")) await PointerBench.RunAsync(server.Endpoints, settings, results);
        }

        if (chosen.Contains("queues")) await Queues.RunAsync(settings, results);
        if (chosen.Contains("events")) await EventsBench.RunAsync(settings, results);
        if (chosen.Contains("python")) await PythonPeersAsync(settings, results);
        if (chosen.Contains("serialization")) Serialization(settings, results);
    }

    /// <summary>The pause before each system's turn in a latency round.</summary>
    private const int QuietMs = 100;

    private static async Task SmallCallsAsync(ServerProcess server, Settings settings, List<BenchResult> results)
    {
        Endpoints endpoints = server.Endpoints;
        Func<Task<SystemUnderTest>>[] systems =
        [
            () => Task.FromResult(Systems.InProcessFloor()),
            Systems.InProcessAsync,
            () => Systems.InProcessAsync(inline: true),
            () => Systems.HttpBinaryAsync(endpoints.Http),
            () => Systems.HttpWebSocketAsync(endpoints.Http),
            () => Task.FromResult(Systems.HttpJsonRpc(endpoints.Http)),
            () => Systems.ZeroMqAsync("ipyrpc-zmq-tcp", endpoints.ZmqTcp),
            () => Systems.ZeroMqAsync("ipyrpc-zmq-tcp-inline", endpoints.ZmqTcp, inline: true),
            () => Systems.ZeroMqAsync("ipyrpc-zmq-ipc", endpoints.ZmqIpc),
            () => Task.FromResult(Systems.RawZeroMq(endpoints.RawZmq)),
            () => Task.FromResult(Systems.RawKestrel(endpoints.Baseline)),
            () => Systems.SignalRAsync(endpoints.Baseline),
            () => Task.FromResult(Systems.MinimalApi(endpoints.Baseline)),
        ];

        var connected = new List<SystemUnderTest>();
        try
        {
            foreach (Func<Task<SystemUnderTest>> make in systems) connected.Add(await make());
            if (settings.Systems is { } only)
            {
                string[] unknown = [.. only.Where(name => !connected.Any(s => s.Name == name))];
                if (unknown.Length > 0) throw new UnknownSystemException($"--systems: no small-call system named {string.Join(", ", unknown)}; choose from {string.Join(", ", connected.Select(s => s.Name))}.");
                foreach (SystemUnderTest dropped in connected.Where(s => !only.Contains(s.Name))) await dropped.DisposeAsync();
                connected.RemoveAll(s => !only.Contains(s.Name));
            }

            // Latency: every system in turn, for several rounds, so the machine's drift (these are
            // shared, noisy machines) falls on all of them alike; the percentiles pool all rounds.
            var samples = connected.ToDictionary(s => s.Name, _ => new List<long>());
            await WarmUpAsync(connected, server, settings);

            int rounds = settings.Mode == "smoke" ? 1 : 5;
            for (int round = 0; round < rounds; round++)
            {
                Progress($"small call latency, round {round + 1} of {rounds}");
                for (int i = 0; i < connected.Count; i++)
                {
                    // Each round starts with another system, so none always follows the same one; and each system's
                    // turn starts on a quiet machine: thread-pool workers that spin after a busy system (an HTTP one)
                    // keep a core from idling, and the next system's wake-ups were twice as fast while they did.
                    SystemUnderTest system = connected[(i + round) % connected.Count];
                    if (settings.Mode != "smoke") await Task.Delay(QuietMs);
                    samples[system.Name].AddRange(await Measure.SamplesAsync(system.SmallCall, settings.LatencyCalls / rounds));
                }
            }

            foreach (SystemUnderTest system in connected)
            {
                (double p50, double p99) = Measure.Percentiles([.. samples[system.Name]]);
                results.Add(new BenchResult("small-call", system.Name, 0, 1, p50, p99, 1_000_000 / p50, null));
            }

            // Throughput: likewise interleaved, in rounds; each system reports its median round.
            foreach (int inFlight in new[] { 16, 64 })
            {
                var rates = connected.ToDictionary(s => s.Name, _ => new List<double>());
                int throughputRounds = settings.Mode == "smoke" ? 1 : 3;

                // Unmeasured, first: at a new number in flight the HTTP clients open connections (and servers set up
                // what a connection needs); that belongs to no round.
                foreach (SystemUnderTest system in connected)
                {
                    Progress($"small call throughput at {inFlight} in flight, warm-up: {system.Name}");
                    int calls = Math.Min(settings.ThroughputCalls, inFlight * 20);
                    _ = system.PipelinedThroughput is { } pipelined ? await Task.Run(() => pipelined(inFlight, calls)) : await Measure.ThroughputAsync(system.SmallCall, inFlight, calls);
                }

                for (int round = 0; round < throughputRounds; round++)
                {
                    Progress($"small call throughput at {inFlight} in flight, round {round + 1} of {throughputRounds}");
                    foreach (SystemUnderTest system in connected)
                    {
                        rates[system.Name].Add(system.PipelinedThroughput is { } pipelined
                            ? await Task.Run(() => pipelined(inFlight, settings.ThroughputCalls))
                            : await Measure.ThroughputAsync(system.SmallCall, inFlight, settings.ThroughputCalls));
                    }
                }

                foreach (SystemUnderTest system in connected)
                {
                    double[] sorted = [.. rates[system.Name].Order()];
                    results.Add(new BenchResult("small-call", system.Name, 0, inFlight, null, null, sorted[sorted.Length / 2], null));
                }
            }
        }
        finally
        {
            foreach (SystemUnderTest system in connected) await system.DisposeAsync();
        }
    }

    /// <summary>
    /// Warms every system up until the JIT has settled in both processes: passes of <see cref="Settings.Warmup"/>
    /// calls each, with a pause after each for the runtime's background compiler (a method is recompiled optimized
    /// only some time after its first calls, and with dynamic PGO twice), until a pass compiles next to nothing new
    /// in this process and in the server's. Without it the systems with the longest call paths were measured partly
    /// unoptimized: their p99 was the JIT's. The server's count matters from the second run of a <c>--repeat</c> on:
    /// the server process is new while this one is warm, and measuring while the server still compiled gave its
    /// systems slower calls, and every system faster wake-ups (a busy compiler thread keeps the other core from
    /// idling).
    /// </summary>
    private static async Task WarmUpAsync(List<SystemUnderTest> systems, ServerProcess server, Settings settings)
    {
        int maxPasses = settings.Mode == "smoke" ? 1 : 10;
        for (int pass = 1; pass <= maxPasses; pass++)
        {
            long compiled = System.Runtime.JitInfo.GetCompiledMethodCount();
            long serverCompiled = await server.CompiledMethodsAsync();
            foreach (SystemUnderTest system in systems)
            {
                Progress($"small call warm-up, pass {pass}: {system.Name}");
                for (int i = 0; i < settings.Warmup; i++) await system.SmallCall();
            }

            if (settings.Mode == "smoke") return;
            await Task.Delay(500);
            long fresh = System.Runtime.JitInfo.GetCompiledMethodCount() - compiled;
            long serverFresh = await server.CompiledMethodsAsync() - serverCompiled;
            Progress($"small call warm-up, pass {pass}: {fresh} methods compiled here, {serverFresh} in the server");
            if (pass >= 2 && fresh < 10 && serverFresh < 10) return;
        }
    }

    private static async Task PayloadsAsync(Endpoints endpoints, Settings settings, List<BenchResult> results)
    {
        Func<Task<SystemUnderTest>>[] systems =
        [
            Systems.InProcessAsync,
            () => Systems.ZeroMqAsync("ipyrpc-zmq-tcp", endpoints.ZmqTcp),
            () => Systems.HttpBinaryAsync(endpoints.Http),
            () => Task.FromResult(Systems.RawZeroMq(endpoints.RawZmq)),
            () => Task.FromResult(Systems.RawKestrel(endpoints.Baseline)),
        ];

        // Size by size, every system in turn (each size starting with another one), each turn after a quiet pause as
        // in the latency rounds: a system measured right after another's busy threads was measured on a machine that
        // never idled.
        var connected = new List<SystemUnderTest>();
        try
        {
            foreach (Func<Task<SystemUnderTest>> make in systems) connected.Add(await make());
            for (int s = 0; s < PayloadSizes.Length; s++)
            {
                long size = PayloadSizes[s];
                int calls = settings.PayloadCalls(size);
                byte[] bytes = new byte[size];
                Random.Shared.NextBytes(bytes);
                double[] doubles = [.. Enumerable.Range(0, (int)Math.Max(1, size / 8)).Select(i => i * 0.5)];
                for (int i = 0; i < connected.Count; i++)
                {
                    SystemUnderTest system = connected[(i + s) % connected.Count];
                    if (system.EchoBytes is { } echoBytes)
                    {
                        Progress($"payload {Size(size)} byte[]: {system.Name}");
                        if (settings.Mode != "smoke") await Task.Delay(QuietMs);
                        results.Add(await PayloadAsync("payload-bytes", system.Name, size, () => echoBytes(bytes), calls));
                    }

                    if (system.EchoDoubles is { } echoDoubles)
                    {
                        Progress($"payload {Size(size)} double[]: {system.Name}");
                        if (settings.Mode != "smoke") await Task.Delay(QuietMs);
                        results.Add(await PayloadAsync("payload-doubles", system.Name, size, () => echoDoubles(doubles), calls));
                    }
                }
            }
        }
        finally
        {
            foreach (SystemUnderTest system in connected) await system.DisposeAsync();
        }
    }

    private static async Task<BenchResult> PayloadAsync(string scenario, string system, long size, Func<Task> call, int calls)
    {
        (double p50, double p99) = await Measure.LatencyAsync(call, Math.Max(1, calls / 10), calls);
        // MB/s: the payload's size over the median call time (each call carries it both ways).
        return new BenchResult(scenario, system, size, 1, p50, p99, 1_000_000 / p50, size / p50);
    }

    private static async Task PythonPeersAsync(Settings settings, List<BenchResult> results)
    {
        foreach (string peer in new[] { "pyro4", "rpyc" })
        {
            Progress($"python peer: {peer}");
            PeerResult? r = null;
            string? error = null;
            try
            {
                var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
                start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "python", "peers.py"));
                foreach (string a in new[] { peer, "--warmup", (settings.Warmup / 2).ToString(CultureInfo.InvariantCulture), "--calls", settings.PythonCalls.ToString(CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
                using Process process = Process.Start(start)!;
                Task<string> stderr = process.StandardError.ReadToEndAsync();
                string stdout = await process.StandardOutput.ReadToEndAsync();
                await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(5)).Token);
                string line = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
                r = line.StartsWith('{') ? JsonSerializer.Deserialize(line, BenchReportJson.Default.PeerResult) : null;
                error = r?.Error ?? (r is null ? "no result: " + (await stderr).Trim() : null);
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or JsonException or OperationCanceledException)
            {
                error = e.Message;
            }

            results.Add(error is null && r is not null
                ? new BenchResult("small-call", "python-" + peer, 0, 1, r.P50Us, r.P99Us, r.CallsPerS, null)
                : new BenchResult("small-call", "python-" + peer, 0, 1, null, null, null, null) { Note = "not measured: " + error + " (apt-get install python3-pyro4 python3-rpyc)" });
        }
    }

    private static void Serialization(Settings settings, List<BenchResult> results)
    {
        Progress("serialization (BenchmarkDotNet, in process)");
        Job job = settings.Mode switch
        {
            "smoke" => Job.Dry,
            "quick" => Job.ShortRun.WithWarmupCount(2).WithIterationCount(5),
            _ => Job.Default,
        };
        IConfig config = ManualConfig.CreateEmpty()
            .AddJob(job.WithToolchain(InProcessNoEmitToolchain.Instance))
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddLogger(NullLogger.Instance)
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .WithOptions(ConfigOptions.DisableOptimizationsValidator | ConfigOptions.DisableLogFile);
        Summary summary = BenchmarkRunner.Run<SerializationBenchmarks>(config);
        foreach (BenchmarkReport report in summary.Reports)
        {
            string[] name = (report.BenchmarkCase.Descriptor.WorkloadMethodDisplayInfo.Trim('\'')).Split('/');
            double? ns = report.ResultStatistics?.Median;
            long? allocated = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);
            results.Add(new BenchResult($"serialization-{name[0]}-{name[1]}", name[2], name[0] == "nine" ? 0 : 8_000_000, 1, ns / 1000, null, ns is > 0 ? 1e9 / ns : null, null) { AllocatedBytes = allocated });
        }
    }

    private static List<Ratio> Ratios(List<BenchResult> results)
    {
        double? Get(string scenario, string system, int inFlight, Func<BenchResult, double?> pick, long payload = 0)
            => results.FirstOrDefault(r => r.Scenario == scenario && r.System == system && r.InFlight == inFlight && r.PayloadBytes == payload) is { } r ? pick(r) : null;

        Ratio Make(string name, string ours, string baseline, double? o, double? b, string target, bool lowerIsBetter, double? oP99 = null, double? bP99 = null)
        {
            // An empty target: a ratio shown for what it says (where time goes), not one to meet.
            double? value = o is > 0 && b is > 0 ? o / b : null;
            double bound = target.Length == 0 ? 0 : double.Parse(target.TrimStart('<', '>', '=', ' '), CultureInfo.InvariantCulture);
            bool? met = value is null || target.Length == 0 ? null : lowerIsBetter ? value <= bound : value >= bound;
            return new Ratio(name, ours, baseline, value is null ? null : Math.Round(value.Value, 3), target, met)
            {
                P99 = oP99 is > 0 && bP99 is > 0 ? Math.Round(oP99.Value / bP99.Value, 3) : null,
            };
        }

        double? P50(string system) => Get("small-call", system, 1, r => r.P50Us);
        double? P99(string system) => Get("small-call", system, 1, r => r.P99Us);
        Ratio Latency(string name, string ours, string baseline, string target) => Make(name, ours, baseline, P50(ours), P50(baseline), target, true, P99(ours), P99(baseline));
        double? At64(string system) => Get("small-call", system, 64, r => r.CallsPerS);
        double? Mbps(string scenario, string system, long size) => Get(scenario, system, 1, r => r.MbPerS, size);
        double? QueueP50(string system) => Get("queue-call", system, 1, r => r.P50Us);
        double? QueueP99(string system) => Get("queue-call", system, 1, r => r.P99Us);
        double? Pointer(string scenario, string system, Func<BenchResult, double?> pick) => results.FirstOrDefault(r => r.Scenario == scenario && r.System == system) is { } r ? pick(r) : null;
        double? MicrosPerJob(string system) => Get("queue-call", system, 16, r => r.CallsPerS is > 0 ? 1_000_000 / r.CallsPerS : null);
        const long MB = 1024 * 1024;
        return
        [
            Make("in-process small-call p50 in µs", "ipyrpc-inproc", "1 µs", P50("ipyrpc-inproc"), 1, "<= 10", true, P99("ipyrpc-inproc"), 1),
            Latency("in-process small-call p50 vs its floor (the generated invoker alone)", "ipyrpc-inproc", "ipyrpc-inproc-floor", ""), // no target: what the plumbing costs
            Make("in-process small-call p50 in µs, Inline function", "ipyrpc-inproc-inline", "1 µs", P50("ipyrpc-inproc-inline"), 1, "<= 10", true, P99("ipyrpc-inproc-inline"), 1),
            Latency("zmq small-call p50 vs raw libzmq", "ipyrpc-zmq-tcp", "raw-libzmq", "<= 1.25"),
            Latency("zmq small-call p50 vs raw libzmq, Inline function", "ipyrpc-zmq-tcp-inline", "raw-libzmq", "<= 1.25"),
            Latency("zmq small-call p50 vs Pyro4", "ipyrpc-zmq-tcp", "python-pyro4", "<= 0.5"),
            Latency("zmq small-call p50 vs RPyC", "ipyrpc-zmq-tcp", "python-rpyc", ""), // no target: the latency issue sets one against Pyro4 only
            Latency("zmq small-call p50 vs SignalR", "ipyrpc-zmq-tcp", "signalr", "<= 0.33"),
            Make("zmq calls/s at 64 in flight vs raw libzmq", "ipyrpc-zmq-tcp", "raw-libzmq", At64("ipyrpc-zmq-tcp"), At64("raw-libzmq"), ">= 0.6", false),
            Latency("HTTP binary small-call p50 vs raw Kestrel", "ipyrpc-http-binary", "raw-kestrel", "<= 1.25"),
            Make("HTTP JSON-RPC calls/s at 64 in flight vs raw Kestrel", "ipyrpc-http-jsonrpc", "raw-kestrel", At64("ipyrpc-http-jsonrpc"), At64("raw-kestrel"), ">= 0.9", false),
            Latency("WebSocket small-call p50 vs SignalR", "ipyrpc-http-ws", "signalr", "<= 1"),
            Make("1 MB byte[] MB/s over zmq vs raw libzmq", "ipyrpc-zmq-tcp", "raw-libzmq", Mbps("payload-bytes", "ipyrpc-zmq-tcp", MB), Mbps("payload-bytes", "raw-libzmq", MB), ">= 0.7", false),
            Make("64 MB byte[] MB/s over zmq vs raw libzmq", "ipyrpc-zmq-tcp", "raw-libzmq", Mbps("payload-bytes", "ipyrpc-zmq-tcp", 64 * MB), Mbps("payload-bytes", "raw-libzmq", 64 * MB), ">= 0.7", false),
            Make("1 MB double[] MB/s over zmq vs raw libzmq", "ipyrpc-zmq-tcp", "raw-libzmq", Mbps("payload-doubles", "ipyrpc-zmq-tcp", MB), Mbps("payload-doubles", "raw-libzmq", MB), ">= 0.7", false),
            Make("64 MB double[] MB/s over zmq vs raw libzmq", "ipyrpc-zmq-tcp", "raw-libzmq", Mbps("payload-doubles", "ipyrpc-zmq-tcp", 64 * MB), Mbps("payload-doubles", "raw-libzmq", 64 * MB), ">= 0.7", false),
            Make("events a second to 4 in-process subscribers, with the event history (the default) vs without", "events-history", "events-no-history",
                Get("events", "events-history", 4, r => r.CallsPerS), Get("events", "events-no-history", 4, r => r.CallsPerS), "", false), // no target: what keeping events for subscriptions that resume costs
            Make("events a second to 4 in-process subscribers, served over HTTP too vs without a history", "events-history-http", "events-no-history",
                Get("events", "events-history-http", 4, r => r.CallsPerS), Get("events", "events-no-history", 4, r => r.CallsPerS), "", false),
            Make("in-memory queue µs per job at 16 in flight (a function that does nothing)", "queue-memory-alone", "1 µs", MicrosPerJob("queue-memory-alone"), 1, "<= 5", true),
            Make("SQLite queue call p50 vs raw SQLite transaction", "ipyrpc-inproc-sqlite", "raw-sqlite-transaction", QueueP50("ipyrpc-inproc-sqlite"), QueueP50("raw-sqlite-transaction"), "<= 3", true, QueueP99("ipyrpc-inproc-sqlite"), QueueP99("raw-sqlite-transaction")),
            Make("Redis queue call p50 vs raw XADD+XREADGROUP+XACK", "ipyrpc-inproc-redis", "raw-redis-xadd-xreadgroup-xack", QueueP50("ipyrpc-inproc-redis"), QueueP50("raw-redis-xadd-xreadgroup-xack"), "<= 3", true, QueueP99("ipyrpc-inproc-redis"), QueueP99("raw-redis-xadd-xreadgroup-xack")),
            Make("10 rows of a 10,000,000 × 8 double array by pointer slice: p50 vs a small call", "ipyrpc-zmq-fetch-10-rows", "ipyrpc-zmq-small-call",
                Pointer("pointer-slice", "ipyrpc-zmq-fetch-10-rows", r => r.P50Us), Pointer("pointer-slice", "ipyrpc-zmq-small-call", r => r.P50Us), "<= 1.5", true,
                Pointer("pointer-slice", "ipyrpc-zmq-fetch-10-rows", r => r.P99Us), Pointer("pointer-slice", "ipyrpc-zmq-small-call", r => r.P99Us)),
            Make("the whole array vs its first 10 rows by pointer slice (time)", "ipyrpc-zmq-fetch-whole", "ipyrpc-zmq-fetch-10-rows",
                Pointer("pointer-slice", "ipyrpc-zmq-fetch-whole", r => r.P50Us), Pointer("pointer-slice", "ipyrpc-zmq-fetch-10-rows", r => r.P50Us), ">= 100", false),
            Make("compute → slice → reduce: time by value vs by pointer", "by-value", "by-pointer",
                Pointer("pointer-chain", "by-value", r => r.P50Us), Pointer("pointer-chain", "by-pointer", r => r.P50Us), ">= 1", false),
            Make("compute → slice → reduce: bytes to the client by pointer vs by value", "by-pointer", "by-value",
                Pointer("pointer-chain", "by-pointer", r => r.ClientBytes), Pointer("pointer-chain", "by-value", r => r.ClientBytes), "<= 0.001", true),
        ];
    }

    private static string Markdown(List<BenchResult> results, List<Ratio> ratios, int repeat)
    {
        static string F(double? v, string format = "0.0") => v is null ? "" : v.Value.ToString(format, CultureInfo.InvariantCulture);
        var md = new StringBuilder();
        md.AppendLine("| scenario | system | payload | in flight | p50 µs | p99 µs | calls/s | MB/s | alloc B/op |");
        md.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (BenchResult r in results)
        {
            md.AppendLine($"| {r.Scenario} | {r.System} | {(r.PayloadBytes == 0 ? "" : Size(r.PayloadBytes))} | {r.InFlight} | {F(r.P50Us, "0.###")} | {F(r.P99Us)} | {F(r.CallsPerS, "0")} | {F(r.MbPerS, "0.0")} | {(r.AllocatedBytes?.ToString(CultureInfo.InvariantCulture) ?? "")} |{(r.Note is null ? "" : " " + r.Note)}");
        }

        md.AppendLine();
        md.AppendLine(repeat > 1 ? $"| ratio | ours | baseline | value (median of {repeat}) | p99 ratio | runs | target | met |" : "| ratio | ours | baseline | value | p99 ratio | target | met |");
        md.AppendLine(repeat > 1 ? "| --- | --- | --- | ---: | ---: | --- | --- | --- |" : "| --- | --- | --- | ---: | ---: | --- | --- |");
        foreach (Ratio r in ratios)
        {
            string runs = repeat > 1 ? (r.Runs.All(v => v is null) ? " |" : $" {string.Join(", ", r.Runs.Select(v => F(v, "0.###")))} |") : "";
            md.AppendLine($"| {r.Name} | {r.Ours} | {r.Baseline} | {F(r.Value, "0.###")} | {F(r.P99, "0.###")} |{runs} {r.Target} | {(r.Target.Length == 0 ? "" : r.Met is null ? "n/a" : r.Met.Value ? "yes" : "**no**")} |");
        }

        return md.ToString();
    }

    private static MachineInfo Machine(string mode)
    {
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown"
            : RuntimeInformation.ProcessArchitecture.ToString();
        string libzmq = "missing";
        try
        {
            libzmq = ZeroMqVersion();
        }
        catch (Exception e) when (e is DllNotFoundException or IpyRpc.ZeroMq.ZeroMqNotFoundException)
        {
        }

        return new MachineInfo(DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture), RuntimeInformation.OSDescription, cpu,
            Environment.ProcessorCount, Environment.Version.ToString(), libzmq, mode);
    }

    private static unsafe string ZeroMqVersion()
    {
        IpyRpc.ZeroMq.Native.LibZmq.EnsureLoaded();
        int a, b, c;
        IpyRpc.ZeroMq.Native.LibZmq.zmq_version(&a, &b, &c);
        return $"{a}.{b}.{c}";
    }

    private static string Size(long bytes) => bytes switch
    {
        >= 1024 * 1024 => $"{bytes / (1024 * 1024)} MB",
        >= 1024 => $"{bytes / 1024} KB",
        _ => $"{bytes} B",
    };

    private static void Progress(string what) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {what}");

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}

/// <summary>The server half, in a process of its own, as real use has client and server apart.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, Endpoints endpoints)
    {
        _process = process;
        Endpoints = endpoints;
    }

    public Endpoints Endpoints { get; }

    /// <summary>The server process's id (to read what it spent from <c>/proc</c>).</summary>
    public int Id => _process.Id;

    /// <summary>
    /// Starts the server process; with <paramref name="forget"/> its queue keeps finished calls' records within 1 MB (the
    /// loop's <c>forget</c>); with <paramref name="polled"/> its raw libzmq echo waits as IpyRpc's socket thread does (the
    /// loop's <c>polled</c>).
    /// </summary>
    public static async Task<ServerProcess> StartAsync(bool forget = false, bool polled = false)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
        start.ArgumentList.Add(typeof(ServerProcess).Assembly.Location);
        start.ArgumentList.Add("serve");
        if (forget) start.ArgumentList.Add("forget");
        if (polled) start.ArgumentList.Add("polled");
        Process process = Process.Start(start)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            // Ready by signal: the server prints one READY line when every listener is up.
            string? line = await process.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null) throw new InvalidOperationException("The benchmark server exited before it was ready.");
            if (line.StartsWith("READY ", StringComparison.Ordinal))
            {
                return new ServerProcess(process, JsonSerializer.Deserialize(line[6..], BenchReportJson.SingleLine.Endpoints)!);
            }
        }
    }

    /// <summary>How many methods the server process's JIT has compiled so far (it answers a <c>jit</c> line with a <c>JIT n</c> line).</summary>
    public async Task<long> CompiledMethodsAsync()
    {
        await _process.StandardInput.WriteLineAsync("jit");
        await _process.StandardInput.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            string line = await _process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("The benchmark server exited.");
            if (line.StartsWith("JIT ", StringComparison.Ordinal)) return long.Parse(line[4..], System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _process.StandardInput.Close();
        using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await _process.WaitForExitAsync(grace.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}

/// <summary><c>--systems</c> named a system the small-call scenario does not have.</summary>
internal sealed class UnknownSystemException(string message) : Exception(message);
