using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace IpyRpc.Bench.Tests;

/// <summary>The benchmark harness runs end to end with tiny counts and reports every scenario and ratio. No time is asserted.</summary>
public sealed class BenchSmokeTests
{
    [Fact]
    public async Task TheHarnessRunsEveryScenarioAndWritesEveryRatio()
    {
        string json = Path.Combine(Path.GetTempPath(), $"ipyrpc-bench-{Guid.NewGuid():N}.json");
        try
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "IpyRpc.Bench.dll"));
            foreach (string a in new[] { "--smoke", "--repeat", "2", "--json", json }) start.ArgumentList.Add(a);
            using Process process = Process.Start(start)!;
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(10)).Token);
            Assert.True(process.ExitCode == 0, await stdout + await stderr);
            Assert.Contains("| ratio | ours | baseline |", await stdout);

            using JsonDocument report = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            JsonElement root = report.RootElement;
            Assert.True(root.GetProperty("machine").GetProperty("cores").GetInt32() > 0);
            JsonElement[] all = [.. root.GetProperty("results").EnumerateArray()];
            JsonElement[] results = [.. all.Where(r => r.GetProperty("run").GetInt32() == 1)];
            string[] systems = [.. results.Where(r => r.GetProperty("scenario").GetString() == "small-call").Select(r => r.GetProperty("system").GetString()!).Distinct()];
            Assert.Equal(
                ["aspnet-minimal-api", "ipyrpc-http-binary", "ipyrpc-http-jsonrpc", "ipyrpc-http-ws", "ipyrpc-inproc", "ipyrpc-inproc-floor", "ipyrpc-inproc-inline", "ipyrpc-zmq-ipc", "ipyrpc-zmq-tcp", "ipyrpc-zmq-tcp-inline", "python-pyro4", "python-rpyc", "raw-kestrel", "raw-libzmq", "signalr"],
                systems.Order());
            foreach (JsonElement r in results.Where(r => r.GetProperty("scenario").GetString() == "small-call" && r.GetProperty("in_flight").GetInt32() == 1))
            {
                Assert.True(r.GetProperty("p50_us").GetDouble() > 0, $"{r.GetProperty("system")} has no p50 ({r.GetProperty("note")})");
            }

            long[] sizes = [.. results.Where(r => r.GetProperty("scenario").GetString() == "payload-doubles" && r.GetProperty("system").GetString() == "ipyrpc-zmq-tcp").Select(r => r.GetProperty("payload_bytes").GetInt64())];
            Assert.Equal([8L, 1024, 65536, 1048576, 67108864], sizes);
            Assert.Equal(12, results.Count(r => r.GetProperty("scenario").GetString()!.StartsWith("serialization-", StringComparison.Ordinal)));
            string[] queues = [.. results.Where(r => r.GetProperty("scenario").GetString() == "queue-call").Select(r => r.GetProperty("system").GetString()!).Distinct()];
            Assert.Equal(
                ["ipyrpc-3workers-redis", "ipyrpc-inproc-memory", "ipyrpc-inproc-redis", "ipyrpc-inproc-sqlite", "ipyrpc-worker-redis", "ipyrpc-worker-sqlite", "queue-memory-alone", "raw-redis-xadd-xreadgroup-xack", "raw-sqlite-transaction"],
                queues.Order());

            // Events, with and without the history, each heard by its four subscribers at some rate.
            Assert.Equal(["events-history", "events-history-http", "events-no-history"], results.Where(r => r.GetProperty("scenario").GetString() == "events" && r.GetProperty("calls_per_s").GetDouble() > 0).Select(r => r.GetProperty("system").GetString()!).Distinct().Order());

            string[] ratios = [.. root.GetProperty("ratios").EnumerateArray().Select(r => r.GetProperty("name").GetString()!)];
            Assert.Contains("zmq small-call p50 vs raw libzmq", ratios);
            Assert.Contains("zmq small-call p50 vs raw libzmq, Inline function", ratios);
            Assert.Contains("in-process small-call p50 in µs, Inline function", ratios);
            Assert.Contains("zmq small-call p50 vs SignalR", ratios);
            Assert.Contains("HTTP JSON-RPC calls/s at 64 in flight vs raw Kestrel", ratios);
            Assert.Contains("64 MB double[] MB/s over zmq vs raw libzmq", ratios);
            Assert.Contains("zmq small-call p50 vs Pyro4", ratios);
            Assert.Contains("zmq small-call p50 vs RPyC", ratios);
            Assert.Contains("events a second to 4 in-process subscribers, with the event history (the default) vs without", ratios);
            Assert.Contains("events a second to 4 in-process subscribers, served over HTTP too vs without a history", ratios);
            // A target is printed only where an issue sets one: the latency issue's is against Pyro4, and none is set against RPyC or the in-process floor.
            string TargetOf(string name) => root.GetProperty("ratios").EnumerateArray().Single(r => r.GetProperty("name").GetString() == name).GetProperty("target").GetString()!;
            Assert.Equal("<= 0.5", TargetOf("zmq small-call p50 vs Pyro4"));
            Assert.Equal("", TargetOf("zmq small-call p50 vs RPyC"));
            Assert.Equal("", TargetOf("in-process small-call p50 vs its floor (the generated invoker alone)"));
            Assert.Contains("in-process small-call p50 in µs", ratios);
            Assert.Contains("in-process small-call p50 vs its floor (the generated invoker alone)", ratios);
            Assert.Contains("zmq calls/s at 64 in flight vs raw libzmq", ratios);
            Assert.Contains("1 MB byte[] MB/s over zmq vs raw libzmq", ratios);
            Assert.Contains("SQLite queue call p50 vs raw SQLite transaction", ratios);
            Assert.Contains("Redis queue call p50 vs raw XADD+XREADGROUP+XACK", ratios);
            Assert.Contains("in-memory queue µs per job at 16 in flight (a function that does nothing)", ratios);
            Assert.Contains("WebSocket small-call p50 vs SignalR", ratios);
            Assert.Contains("10 rows of a 10,000,000 × 8 double array by pointer slice: p50 vs a small call", ratios);
            Assert.Contains("compute → slice → reduce: bytes to the client by pointer vs by value", ratios);
            string[] pointerRows = [.. results.Where(r => r.GetProperty("scenario").GetString()!.StartsWith("pointer-", StringComparison.Ordinal)).Select(r => r.GetProperty("system").GetString()!)];
            Assert.Equal(["by-pointer", "by-value", "ipyrpc-zmq-fetch-10-rows", "ipyrpc-zmq-fetch-whole", "ipyrpc-zmq-small-call"], pointerRows.Order());
            Assert.All(root.GetProperty("ratios").EnumerateArray(), r => Assert.Equal(JsonValueKind.Number, r.GetProperty("value").ValueKind));
            // Latency ratios carry their p99 ratio too; with --repeat 2 every ratio is the median of two runs, each run's value listed.
            Assert.Equal(JsonValueKind.Number, root.GetProperty("ratios").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "zmq small-call p50 vs raw libzmq").GetProperty("p99").ValueKind);
            Assert.All(root.GetProperty("ratios").EnumerateArray(), r => Assert.Equal(2, r.GetProperty("runs").GetArrayLength()));
            Assert.Equal([1, 2], all.Select(r => r.GetProperty("run").GetInt32()).Distinct().Order());
            Assert.Equal(results.Length, all.Count(r => r.GetProperty("run").GetInt32() == 2));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task SystemsNarrowsTheSmallCallScenarioToTheNamedSystemsAndRefusesUnknownOnes()
    {
        string json = Path.Combine(Path.GetTempPath(), $"ipyrpc-bench-{Guid.NewGuid():N}.json");
        try
        {
            (int exit, string output) = await RunAsync("--smoke", "--systems", "ipyrpc-inproc,raw-kestrel", "--json", json, "small");
            Assert.True(exit == 0, output);
            using JsonDocument report = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            string[] systems = [.. report.RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("system").GetString()!).Distinct()];
            Assert.Equal(["ipyrpc-inproc", "raw-kestrel"], systems.Order());

            (exit, output) = await RunAsync("--smoke", "--systems", "ipyrpc-inproc,no-such-system", "small");
            Assert.Equal(2, exit);
            Assert.Contains("no small-call system named no-such-system", output);
            Assert.Contains("raw-libzmq", output); // the names it could have been
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Fact]
    public async Task TheLoopRunsTheRawLibzmqFloorPolledAsIpyRpcWaitsAndPlain()
    {
        // polled: both raw threads (the server process's echo and this client) wait in poll(2) on the socket's
        // descriptor, as IpyRpc's socket threads do, instead of inside libzmq's blocking receive.
        (int exit, string output) = await RunAsync("loop", "300", "rawzmq", "remote", "polled");
        Assert.True(exit == 0, output);
        Assert.Contains("300 small calls (raw libzmq ping-pong, polled, server in its own process, 1 in flight)", output);
        System.Text.RegularExpressions.Match waits = System.Text.RegularExpressions.Regex.Match(output, @"the client waited in poll\(2\) (\d+) times");
        Assert.True(waits.Success, output);
        // One call in flight: nearly every reply comes after the look that follows the request's send, so the client waits
        // for it in poll(2), for the 300 warm-up calls and the 300 measured (more when a wait wakes for a command, not a message).
        Assert.True(long.Parse(waits.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 300, output);

        (exit, output) = await RunAsync("loop", "300", "rawzmq", "remote");
        Assert.True(exit == 0, output);
        Assert.Contains("300 small calls (raw libzmq ping-pong, server in its own process, 1 in flight)", output);
        Assert.DoesNotContain("poll(2)", output);
    }

    [Fact]
    public async Task TheServerProcessSaysHowManyMethodsItsJitCompiledAndStopsWhenItsInputCloses()
    {
        // The harness warms up until the JIT has settled in the server process too: it asks with a "jit" line.
        var start = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "IpyRpc.Bench.dll"));
        start.ArgumentList.Add("serve");
        using Process process = Process.Start(start)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        async Task<string> LineStartingAsync(string prefix)
        {
            while (true)
            {
                string line = await process.StandardOutput.ReadLineAsync(timeout.Token) ?? throw new InvalidOperationException("the server exited: " + await stderr);
                if (line.StartsWith(prefix, StringComparison.Ordinal)) return line[prefix.Length..];
            }
        }

        using JsonDocument endpoints = JsonDocument.Parse(await LineStartingAsync("READY "));
        Assert.StartsWith("tcp://", endpoints.RootElement.GetProperty("zmq_tcp").GetString());
        await process.StandardInput.WriteLineAsync("jit");
        await process.StandardInput.FlushAsync();
        long first = long.Parse(await LineStartingAsync("JIT "), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(first > 0, "the server reported no compiled methods");
        await process.StandardInput.WriteLineAsync("jit");
        await process.StandardInput.FlushAsync();
        Assert.True(long.Parse(await LineStartingAsync("JIT "), System.Globalization.CultureInfo.InvariantCulture) >= first);
        process.StandardInput.Close();
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(0, process.ExitCode);
    }

    private static async Task<(int Exit, string Output)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "IpyRpc.Bench.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromMinutes(5)).Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
