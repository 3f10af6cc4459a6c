using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace IpyRpc;

/// <summary>
/// IpyRpc's traces and metrics, under the name <c>IpyRpc</c> for an <see cref="ActivityListener"/>,
/// a <see cref="MeterListener"/> or OpenTelemetry (<c>AddSource("IpyRpc")</c>, <c>AddMeter("IpyRpc")</c>).
/// </summary>
/// <remarks>
/// <para>Spans: a <b>client</b> span for each call a peer makes (a client's, or a server's call back to
/// its client), a <b>server</b> span where the call is received, and an <b>internal</b> span where its
/// job runs (on the server's workers or an <see cref="IpyRpcWorker"/> in another process). The caller's
/// W3C trace context travels in the message header (<c>trace</c>) and in the job's record, so all three
/// share one trace id. Names are the function's; tags <c>rpc.system</c> = <c>ipyrpc</c>,
/// <c>rpc.method</c>, and <c>ipyrpc.job</c> where the job is known.</para>
/// <para>Metrics (tag <c>rpc.method</c>; durations and outcomes also <c>ipyrpc.outcome</c>:
/// succeeded, failed, cancelled, timed_out): <c>ipyrpc.server.calls</c> (calls received),
/// <c>ipyrpc.server.calls.active</c> (in flight), <c>ipyrpc.server.call.duration</c> (seconds, from
/// receipt to the outcome sent), <c>ipyrpc.server.call.failures</c>, and <c>ipyrpc.queue.depth</c>
/// (jobs waiting in each in-memory queue, tag <c>ipyrpc.queue</c>).</para>
/// </remarks>
public static class IpyRpcTelemetry
{
    /// <summary>The name of the activity source and of the meter.</summary>
    public const string Name = "IpyRpc";

    /// <summary>Where IpyRpc's spans come from.</summary>
    public static readonly ActivitySource Source = new(Name, ProtocolVersionText);

    /// <summary>Where IpyRpc's metrics come from.</summary>
    public static readonly Meter Meter = new(Name, ProtocolVersionText);

    private const string ProtocolVersionText = "1";

    internal static readonly Counter<long> Calls = Meter.CreateCounter<long>("ipyrpc.server.calls", "{call}", "Calls the server received.");

    internal static readonly UpDownCounter<long> Active = Meter.CreateUpDownCounter<long>("ipyrpc.server.calls.active", "{call}", "Calls queued or running.");

    internal static readonly UpDownCounter<long> Waiting = Meter.CreateUpDownCounter<long>("ipyrpc.server.calls.waiting", "{call}", "Calls waiting to start for room among their connection's calls.");

    internal static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("ipyrpc.server.call.duration", "s", "From receiving a call to sending its outcome.");

    internal static readonly Counter<long> Failures = Meter.CreateCounter<long>("ipyrpc.server.call.failures", "{call}", "Calls that ended other than with a result.");

    private static readonly List<WeakReference<Jobs.InMemoryJobQueue>> Queues = [];

    private static readonly ObservableGauge<long> Depth = Meter.CreateObservableGauge("ipyrpc.queue.depth", ObserveDepth, "{job}", "Jobs waiting in each in-memory queue.");

    internal static void Track(Jobs.InMemoryJobQueue queue)
    {
        lock (Queues) Queues.Add(new WeakReference<Jobs.InMemoryJobQueue>(queue));
    }

    private static IEnumerable<Measurement<long>> ObserveDepth()
    {
        var measurements = new List<Measurement<long>>();
        lock (Queues)
        {
            Queues.RemoveAll(w => !w.TryGetTarget(out _));
            foreach (WeakReference<Jobs.InMemoryJobQueue> w in Queues)
            {
                if (w.TryGetTarget(out Jobs.InMemoryJobQueue? q)) measurements.Add(new Measurement<long>(q.Waiting, new KeyValuePair<string, object?>("ipyrpc.queue", q.Name)));
            }
        }

        return measurements;
    }

    /// <summary>Starts a span without making it the current one (it belongs to a call, not to the code that happens to start it).</summary>
    internal static Activity? StartDetached(string name, ActivityKind kind, string? parent, string function)
    {
        if (!Source.HasListeners()) return null;
        Activity? previous = Activity.Current;
        ActivityContext.TryParse(parent, null, out ActivityContext context);
        Activity? activity = parent is null ? Source.StartActivity(name, kind) : Source.StartActivity(name, kind, context);
        Activity.Current = previous;
        activity?.SetTag("rpc.system", "ipyrpc");
        activity?.SetTag("rpc.method", function);
        return activity;
    }

    /// <summary>The outcome's tag value for a job's final state.</summary>
    internal static string Outcome(Jobs.JobState state) => state switch
    {
        Jobs.JobState.Succeeded => "succeeded",
        Jobs.JobState.Cancelled => "cancelled",
        Jobs.JobState.TimedOut => "timed_out",
        _ => "failed",
    };
}
