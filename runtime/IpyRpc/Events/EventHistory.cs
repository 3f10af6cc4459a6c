using System.Security.Cryptography;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The latest events a server published (up to a count and a size), numbered in the order published (from 1), kept so that a
/// subscriber that reconnects (a client's subscription after a reconnect, the HTTP stream's <c>Last-Event-ID</c>) hears what it
/// missed meanwhile. It keeps each payload as MessagePack, and makes another serialization from it through the event's own
/// formatter when a subscriber asks for one (<see cref="KeptEvent.Payload"/>). Each history has a random
/// <see cref="Epoch"/>: a number given by another server, or by this one before it restarted, is told apart from this
/// one's. A publisher holds <see cref="Gate"/> while it numbers the event and queues it for every connection, so every
/// connection gets events in number order; sending happens after the lock is released.
/// </summary>
internal sealed class EventHistory
{
    private readonly Lock _gate = new();
    private readonly Queue<KeptEvent> _kept = new(); // numbers one after another, the oldest first
    private int _capacity;
    private long _maxBytes;
    private long _bytes;
    private long _last;

    public EventHistory(int capacity, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBytes, 1);
        _capacity = capacity;
        _maxBytes = maxBytes;
    }

    /// <summary>This history's random name (8 hex digits), part of every event id it gives.</summary>
    public string Epoch { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));

    /// <summary>How many events it keeps at most.</summary>
    public int Capacity
    {
        get
        {
            lock (_gate) return _capacity;
        }
    }

    /// <summary>How many bytes of JSON payloads it keeps at most (the oldest go first).</summary>
    public long MaxBytes
    {
        get
        {
            lock (_gate) return _maxBytes;
        }
    }

    /// <summary>The number of the last event published (0: none yet).</summary>
    public long Last
    {
        get
        {
            lock (_gate) return _last;
        }
    }

    /// <summary>The id an event stream gives the event numbered <paramref name="number"/>: <c>EPOCH-NUMBER</c>.</summary>
    public string IdOf(long number) => $"{Epoch}-{number}";

    /// <summary>The number in an id this history gave, or <see langword="null"/> for an id it did not give (another server's, an earlier run's, a later number than it has given, not an id).</summary>
    public long? NumberOf(string? id)
    {
        if (id is null || id.Length < Epoch.Length + 2 || id[Epoch.Length] != '-' || !id.StartsWith(Epoch, StringComparison.Ordinal)) return null;
        if (!long.TryParse(id.AsSpan(Epoch.Length + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long number)) return null;
        return number <= Last ? number : null;
    }

    /// <summary>Why a <paramref name="what"/> (a stream, a subscription) that asked to resume after <paramref name="id"/>, an id this history gave, cannot hear everything it missed.</summary>
    public string Expired(string id, string what)
        => $"The server keeps its last {Capacity} events ({Size(MaxBytes)} of payloads at most), and more were published after {Shown(id)}: some events this {what} would have had are lost.";

    /// <summary>Why a <paramref name="what"/> that asked to resume after <paramref name="id"/>, an id this history did not give, starts now.</summary>
    public static string Unknown(string id, string what)
        => $"This server did not give the event id {Shown(id)} (it restarted since, or another server gave it): events published meanwhile may be lost; this {what} starts now.";

    // An id, shown back to whoever gave it when it is short and plain.
    private static string Shown(string id) => id.Length <= 40 && id.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') ? $"'{id}'" : "the id given";

    private static string Size(long bytes) => bytes switch
    {
        >= 1 << 20 => $"{bytes / (1 << 20)} MiB",
        >= 1 << 10 => $"{bytes / (1 << 10)} KiB",
        _ => $"{bytes} bytes",
    };

    /// <summary>Keeps at least <paramref name="capacity"/> events and <paramref name="maxBytes"/> bytes from now on.</summary>
    public void Grow(int capacity, long maxBytes)
    {
        lock (_gate)
        {
            _capacity = Math.Max(_capacity, capacity);
            _maxBytes = Math.Max(_maxBytes, maxBytes);
        }
    }

    /// <summary>The lock a publisher holds while it numbers an event (<see cref="Keep"/>) and queues it for every connection.</summary>
    public Lock Gate => _gate;

    /// <summary>
    /// Numbers <paramref name="e"/> and keeps its payload as MessagePack (encode it before taking <see cref="Gate"/>: that
    /// runs the payload's formatter), the oldest going past the count or the size. Hold <see cref="Gate"/>.
    /// </summary>
    public void Keep(OutgoingEvent e)
    {
        e.Number = ++_last;
        var kept = new KeptEvent(e.Number, e.Name, e.Payload(Serialization.MessagePack), e.Transcode);
        _kept.Enqueue(kept);
        _bytes += kept.MessagePack.Length;
        while (_kept.Count > _capacity || _bytes > _maxBytes) _bytes -= _kept.Dequeue().MessagePack.Length;
    }

    /// <summary>
    /// The events kept whose numbers are greater than <paramref name="after"/>, in order; <paramref name="complete"/> says
    /// whether they are all the events published after it (false when the oldest kept came later).
    /// </summary>
    public List<KeptEvent> After(long after, out bool complete)
    {
        lock (_gate)
        {
            long oldest = _kept.TryPeek(out KeptEvent? first) ? first.Number : _last + 1;
            complete = after >= oldest - 1;
            var events = new List<KeptEvent>((int)Math.Clamp(_last - after, 0, _kept.Count));
            foreach (KeptEvent e in _kept)
            {
                if (e.Number > after) events.Add(e);
            }

            return events;
        }
    }
}

/// <summary>
/// An event a history keeps: its number, its name, its payload as MessagePack and the way to make it in another
/// serialization (read with the event's formatter, written again with it: what publishing would have sent).
/// </summary>
internal sealed record KeptEvent(long Number, string Name, ReadOnlyMemory<byte> MessagePack, Func<ReadOnlyMemory<byte>, Serialization, ReadOnlyMemory<byte>> Transcode)
{
    /// <summary>Its payload in <paramref name="serialization"/>.</summary>
    public ReadOnlyMemory<byte> Payload(Serialization serialization) => serialization == Serialization.MessagePack ? MessagePack : Transcode(MessagePack, serialization);
}
