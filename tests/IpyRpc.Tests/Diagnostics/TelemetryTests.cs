using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using IpyRpc.Jobs;

namespace IpyRpc.Tests;

/// <summary>Functions for the telemetry tests.</summary>
public static class TraceFunctions
{
    /// <summary>Where the function's own spans come from.</summary>
    public static readonly ActivitySource Own = new("IpyRpc.Tests.TraceFunctions");

    /// <summary>Doubles, inside a span of its own.</summary>
    /// <param name="x">The number.</param>
    [IpyRpcExport("trace.double")]
    public static int Double(int x)
    {
        using Activity? inner = Own.StartActivity("doubling");
        return 2 * x;
    }

    /// <summary>Fails.</summary>
    [IpyRpcExport("trace.fail")]
    public static int Fail() => throw new InvalidOperationException("no");

    /// <summary>Waits for a gate.</summary>
    [IpyRpcExport("trace.wait")]
    public static Task Wait(string gate) => Gates.WaitAsync(gate);
}

public sealed class TelemetryTests
{
    [Fact]
    public async Task OneTraceRunsFromTheClientThroughTheServerToAWorkerOnADurableQueue()
    {
        string file = Path.Combine(Path.GetTempPath(), "ipyrpc-trace-" + Guid.NewGuid().ToString("N") + ".db");
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is IpyRpcTelemetry.Name or "IpyRpc.Tests.TraceFunctions",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);
        try
        {
            // The server only queues (no workers of its own); a worker with its own handle on the SQLite file runs the job.
            await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = new SqliteJobQueue(file), Concurrency = 0 });
            server.Register(typeof(TraceFunctions));
            await using IpyRpcWorker worker = new IpyRpcWorker(new SqliteJobQueue(file)).Register(typeof(TraceFunctions)).Start();
            await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

            Assert.Equal(42, await client.CallAsync<int>("trace.double", 21));
            DateTime until = DateTime.UtcNow.AddSeconds(10);
            Activity[] mine;
            do
            {
                mine = [.. spans.Where(a => a.DisplayName is "trace.double" or "doubling")];
                if (mine.Length >= 4) break;
                await Task.Delay(20);
            }
            while (DateTime.UtcNow < until);

            Activity clientSpan = Assert.Single(mine, a => a.Kind == ActivityKind.Client);
            Activity serverSpan = Assert.Single(mine, a => a.Kind == ActivityKind.Server);
            Activity workerSpan = Assert.Single(mine, a => a.Kind == ActivityKind.Internal && a.DisplayName == "trace.double");
            Activity own = Assert.Single(mine, a => a.DisplayName == "doubling");
            Assert.All(mine, a => Assert.Equal(clientSpan.TraceId, a.TraceId)); // one trace across client, server, worker and the function
            Assert.Equal(clientSpan.SpanId, serverSpan.ParentSpanId);
            Assert.Equal(serverSpan.SpanId, workerSpan.ParentSpanId);
            Assert.Equal(workerSpan.SpanId, own.ParentSpanId);
            Assert.Equal("trace.double", serverSpan.GetTagItem("rpc.method"));
            Assert.Equal("succeeded", serverSpan.GetTagItem("ipyrpc.outcome"));
            Assert.Equal(serverSpan.GetTagItem("ipyrpc.job"), workerSpan.GetTagItem("ipyrpc.job"));
        }
        finally
        {
            foreach (string f in Directory.GetFiles(Path.GetDirectoryName(file)!, Path.GetFileName(file) + "*")) File.Delete(f);
        }
    }

    [Fact]
    public async Task CallsDurationsFailuresInFlightAndQueueDepthAreMeasured()
    {
        var longs = new ConcurrentQueue<(string Name, long Value, Dictionary<string, object?> Tags)>();
        var doubles = new ConcurrentQueue<(string Name, double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == IpyRpcTelemetry.Name) l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => longs.Enqueue((i.Name, v, Tags(tags))));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => doubles.Enqueue((i.Name, v, Tags(tags))));
        listener.Start();

        await using var server = new IpyRpcServer();
        server.Register(typeof(TraceFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });
        await client.CallAsync<int>("trace.double", 1);
        await client.CallAsync<int>("trace.double", 2);
        await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallAsync<int>("trace.fail"));
        await Task.Delay(100);

        long Sum(string name, string method) => longs.Where(m => m.Name == name && Equals(m.Tags.GetValueOrDefault("rpc.method"), method)).Sum(m => m.Value);
        Assert.Equal(2, Sum("ipyrpc.server.calls", "trace.double"));
        Assert.Equal(1, Sum("ipyrpc.server.calls", "trace.fail"));
        Assert.Equal(0, Sum("ipyrpc.server.calls.active", "trace.double")); // +1 and -1 for each
        Assert.Equal(1, Sum("ipyrpc.server.call.failures", "trace.fail"));
        Assert.Equal(0, Sum("ipyrpc.server.call.failures", "trace.double"));
        var durations = doubles.Where(m => m.Name == "ipyrpc.server.call.duration" && Equals(m.Tags.GetValueOrDefault("rpc.method"), "trace.double")).ToList();
        Assert.Equal(2, durations.Count);
        Assert.All(durations, d => Assert.Equal("succeeded", d.Tags["ipyrpc.outcome"]));
        Assert.All(durations, d => Assert.InRange(d.Value, 0, 10));
        Assert.Contains(doubles, m => m.Name == "ipyrpc.server.call.duration" && Equals(m.Tags.GetValueOrDefault("ipyrpc.outcome"), "failed"));

        listener.RecordObservableInstruments();
        Assert.Contains(longs, m => m.Name == "ipyrpc.queue.depth" && Equals(m.Tags.GetValueOrDefault("ipyrpc.queue"), server.Queue.Name));
    }

    [Fact]
    public async Task CallsWaitingForRoomOnTheirConnectionAreCounted()
    {
        var longs = new ConcurrentQueue<(string Name, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == IpyRpcTelemetry.Name) l.EnableMeasurementEvents(instrument);
            },
        };
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => longs.Enqueue((i.Name, v, Tags(tags))));
        listener.Start();
        long Waiting() => longs.Where(m => m.Name == "ipyrpc.server.calls.waiting" && Equals(m.Tags.GetValueOrDefault("rpc.method"), "trace.double")).Sum(m => m.Value);

        await using var server = new IpyRpcServer(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 1 });
        server.Register(typeof(TraceFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server);
        string gate = Gates.NewName("telemetry-room");
        Task holding = client.CallAsync<object?>("trace.wait", gate);
        Task<int>[] waiting = [.. Enumerable.Range(1, 3).Select(i => client.CallAsync<int>("trace.double", i))];
        await client.PingAsync(); // the three have been handled: they wait
        Assert.Equal(3, Waiting());

        Gates.Open(gate);
        Assert.Equal(new[] { 2, 4, 6 }, await Task.WhenAll(waiting));
        await holding;
        Assert.Equal(0, Waiting());

        // A connection that ends leaves none of its waiting calls behind.
        IpyRpcClient leaving = await IpyRpcClient.ConnectInProcessAsync(server);
        string never = Gates.NewName("telemetry-never");
        Task stuck = leaving.CallAsync<object?>("trace.wait", never);
        Task<int>[] orphans = [.. Enumerable.Range(1, 5).Select(i => leaving.CallAsync<int>("trace.double", i))];
        await leaving.PingAsync();
        Assert.Equal(5, Waiting());
        await leaving.DisposeAsync();
        await Task.WhenAll(orphans.Select(o => Assert.ThrowsAnyAsync<Exception>(() => o)));
        await Eventually(() => Waiting() == 0);
        Gates.Open(never);
        await Assert.ThrowsAnyAsync<Exception>(() => stuck);
    }

    private static async Task Eventually(Func<bool> condition)
    {
        for (DateTime giveUp = DateTime.UtcNow.AddSeconds(20); !condition(); await Task.Delay(20))
        {
            Assert.True(DateTime.UtcNow < giveUp, "The condition did not become true in time");
        }
    }

    private static Dictionary<string, object?> Tags(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var map = new Dictionary<string, object?>();
        foreach (KeyValuePair<string, object?> t in tags) map[t.Key] = t.Value;
        return map;
    }
}
