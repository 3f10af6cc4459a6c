using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace IpyRpc.Bench;

/// <summary>
/// Samples the runtime's allocation ticks (one event per ~100 KB allocated, naming the type that crossed
/// the mark) and prints which types a loop allocates most, for <c>loop … allocs</c>.
/// </summary>
internal sealed class AllocationCensus : EventListener
{
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    private volatile bool _counting;

    public void Start() => _counting = true;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: GCAllocationTick
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_counting || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
        int type = e.PayloadNames!.IndexOf("TypeName");
        int amount = e.PayloadNames.IndexOf("AllocationAmount64");
        if (type < 0 || amount < 0) return;
        _bytes.AddOrUpdate((string)e.Payload[type]!, Convert.ToInt64(e.Payload[amount], System.Globalization.CultureInfo.InvariantCulture), (_, b) => b + Convert.ToInt64(e.Payload[amount], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>The types with the most bytes sampled, as bytes per call.</summary>
    public void Print(long calls, int top = 30)
    {
        _counting = false;
        foreach ((string type, long bytes) in _bytes.OrderByDescending(p => p.Value).Take(top))
        {
            Console.WriteLine($"{bytes / (double)calls,9:0.0} B/call  {type}");
        }
    }
}
