using System.Diagnostics.Tracing;

namespace IpyRpc.Bench;

/// <summary>
/// Watches this process's garbage collections (the runtime's GC events) and keeps the longest pause, from the
/// threads' suspension to their restart, and what kind of collection it was: the loop prints it beside its slowest
/// call, which it usually explains.
/// </summary>
internal sealed class PauseProbe : EventListener
{
    private readonly object _gate = new();
    private long _suspendedAt;
    private string _collection = "";
    private TimeSpan _longest;
    private string _longestCollection = "none";

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(source, EventLevel.Informational, (EventKeywords)0x1); // GC keyword: GCStart, GCSuspendEEBegin, GCRestartEEEnd
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventName is not { } name || e.Payload is null) return;
        lock (_gate)
        {
            if (name.StartsWith("GCStart", StringComparison.Ordinal) && e.Payload.Count > 3)
            {
                // Payload: count, depth (generation), reason, type (0 blocking, 1 background, 2 blocking during a background one).
                _collection = $"gen{e.Payload[1]}, {(Convert.ToInt32(e.Payload[3], System.Globalization.CultureInfo.InvariantCulture) == 1 ? "background" : "blocking")}";
            }
            else if (name.StartsWith("GCSuspendEEBegin", StringComparison.Ordinal))
            {
                _suspendedAt = e.TimeStamp.Ticks;
            }
            else if (name.StartsWith("GCRestartEEEnd", StringComparison.Ordinal) && _suspendedAt != 0)
            {
                var pause = TimeSpan.FromTicks(e.TimeStamp.Ticks - _suspendedAt);
                _suspendedAt = 0;
                if (pause > _longest)
                {
                    _longest = pause;
                    _longestCollection = _collection;
                }
            }
        }
    }

    /// <summary>The longest pause so far, and the collection it was.</summary>
    public string Longest
    {
        get
        {
            lock (_gate) return $"{_longest.TotalMilliseconds:0.0} ms ({_longestCollection})";
        }
    }
}
