using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using IpyRpc.Formatting;
using IpyRpc.Protocol;

namespace IpyRpc;

public sealed partial class IpyRpcServer
{
    private readonly ConcurrentDictionary<ServerSession, byte> _subscribers = new();

    /// <summary>Every event the server publishes (declared with <see cref="IpyRpcEventAttribute"/> on a registered type), sorted by name.</summary>
    public IReadOnlyList<EventDescriptor> Events => _registry.Events;

    /// <summary>
    /// Publishes an event to every connection subscribed to it. Never waits: each subscriber's
    /// connection has a buffer of <see cref="IpyRpcServerOptions.EventBufferSize"/> events, sent in
    /// order as its transport takes them; a subscriber that falls further behind loses events (or its
    /// connection) by <see cref="IpyRpcServerOptions.EventOverflow"/>, without holding up the others.
    /// </summary>
    /// <returns>How many connections the event was queued for.</returns>
    /// <exception cref="ArgumentException">The event is not registered: register the type that declares it.</exception>
    public int Publish<T>(IpyRpcEvent<T> ipyRpcEvent, T payload)
        => Publish(new OutgoingEvent(Registered(ipyRpcEvent.Name), s => Encode(payload, ipyRpcEvent.Formatter, s), Transcoder<T>.Of(ipyRpcEvent.Formatter)));

    /// <summary>Publishes an event by name with a plain-data payload (numbers, strings, arrays, dictionaries).</summary>
    /// <returns>How many connections the event was queued for.</returns>
    public int Publish(string name, object? payload)
        => Publish(new OutgoingEvent(Registered(name), s => Encode(payload, Formatters.Object, s), Transcoder<object?>.Of(Formatters.Object)));

    // Queues the event for every subscriber first, then sends (on this thread, for transports that send at once). With a
    // history, the numbering and the queueing are one step under its lock, so every connection gets events in the order
    // of their numbers however many threads publish; the sends come after the lock is released.
    private int Publish(OutgoingEvent e)
    {
        List<(EventOutbox, EventOutbox.Posted)>? then = null;
        int queued;
        if (Volatile.Read(ref _history) is { } history)
        {
            _ = e.Payload(Serialization.MessagePack); // encoded before the lock, once: a payload changed after it was published is kept as it was
            lock (history.Gate)
            {
                history.Keep(e);
                queued = QueueEverywhere(e, ref then);
            }
        }
        else
        {
            queued = QueueEverywhere(e, ref then);
        }

        if (then is not null)
        {
            foreach ((EventOutbox outbox, EventOutbox.Posted posted) in then) outbox.Then(posted);
        }

        return queued;
    }

    private int QueueEverywhere(OutgoingEvent e, ref List<(EventOutbox, EventOutbox.Posted)>? then)
    {
        int queued = 0;
        foreach (ServerSession session in _subscribers.Keys)
        {
            (EventOutbox? outbox, EventOutbox.Posted posted) = session.QueueEvent(e);
            if (outbox is null) continue;
            queued++;
            if (posted != EventOutbox.Posted.Nothing) (then ??= []).Add((outbox, posted));
        }

        return queued;
    }

    /// <summary>
    /// Keeps the latest <paramref name="count"/> events published from now on, their payloads up to
    /// <paramref name="maxBytes"/> together (or more, when something asked for more before), numbered, so that a
    /// subscriber that reconnects hears what it missed: the server asks for <see cref="IpyRpcServerOptions.EventHistory"/>
    /// for its clients' subscriptions, the HTTP event stream for <c>IpyRpcHttpOptions.EventStreamHistory</c>. A server
    /// nothing asked keeps no history and numbers nothing.
    /// </summary>
    internal EventHistory RetainEvents(int count, long maxBytes)
    {
        lock (_subscribers)
        {
            if (_history is { } history)
            {
                history.Grow(count, maxBytes);
                return history;
            }

            return _history = new EventHistory(count, maxBytes);
        }
    }

    /// <summary>The history a client's subscription resumes from after a reconnect (<see cref="IpyRpcServerOptions.EventHistory"/>), or <see langword="null"/> when the server keeps none for them.</summary>
    internal EventHistory? SubscriptionHistory { get; private set; }

    private void RetainEventsForSubscriptions()
    {
        if (Options.EventHistory < 0) throw new ArgumentOutOfRangeException(nameof(IpyRpcServerOptions.EventHistory), Options.EventHistory, "IpyRpcServerOptions.EventHistory is a count of events: 0 keeps none.");
        if (Options.EventHistoryBytes < 1) throw new ArgumentOutOfRangeException(nameof(IpyRpcServerOptions.EventHistoryBytes), Options.EventHistoryBytes, "IpyRpcServerOptions.EventHistoryBytes is a size in bytes, 1 or more.");
        if (Options.EventHistory > 0) SubscriptionHistory = RetainEvents(Options.EventHistory, Options.EventHistoryBytes);
    }

    private EventHistory? _history;

    private string Registered(string name) => _registry.FindEvent(name)?.Name ?? throw new ArgumentException(
        $"The server has no event named '{name}'. Declare it with [IpyRpcEvent] on a static IpyRpcEvent<T> field and register the declaring type: server.Register(typeof(...)).", nameof(name));

    internal void Subscribed(ServerSession session) => _subscribers[session] = 0;

    internal void Unsubscribed(ServerSession session) => _subscribers.TryRemove(session, out _);

    internal static ReadOnlyMemory<byte> Encode<T>(T value, IpyRpcFormatter<T> formatter, Serialization serialization)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(SizeHint.Of(value));
        if (serialization == Serialization.Json)
        {
            using var w = new System.Text.Json.Utf8JsonWriter(buffer, IpyRpc.Formatting.Json.JsonWire.Options);
            formatter.Write(w, value);
        }
        else
        {
            var w = new MessagePack.MessagePackWriter(buffer);
            formatter.Write(ref w, value);
        }

        return buffer.WrittenMemory;
    }
}

/// <summary>
/// Makes a payload kept as MessagePack in another serialization, through the event's formatter (one per formatter, made
/// once): what publishing would have sent in it.
/// </summary>
internal static class Transcoder<T>
{
    private static Made? s_last;

    public static Func<ReadOnlyMemory<byte>, Serialization, ReadOnlyMemory<byte>> Of(IpyRpcFormatter<T> formatter)
    {
        if (Volatile.Read(ref s_last) is { } last && ReferenceEquals(last.Formatter, formatter)) return last.Transcode;
        var made = new Made(formatter, (bytes, serialization) =>
        {
            var reader = new MessagePack.MessagePackReader(bytes.Span);
            return IpyRpcServer.Encode(formatter.Read(ref reader), formatter, serialization);
        });
        Volatile.Write(ref s_last, made);
        return made.Transcode;
    }

    private sealed record Made(IpyRpcFormatter<T> Formatter, Func<ReadOnlyMemory<byte>, Serialization, ReadOnlyMemory<byte>> Transcode);
}

/// <summary>An event being published: encoded once per serialization its subscribers (or the history) asked for.</summary>
internal sealed class OutgoingEvent(string name, Func<Serialization, ReadOnlyMemory<byte>> encode, Func<ReadOnlyMemory<byte>, Serialization, ReadOnlyMemory<byte>> transcode)
{
    private IpyRpcMessage? _messagePack;
    private IpyRpcMessage? _json;
    private StrongBox<ReadOnlyMemory<byte>>? _messagePackPayload;
    private StrongBox<ReadOnlyMemory<byte>>? _jsonPayload;

    public string Name => name;

    /// <summary>Makes its payload, kept as MessagePack, in another serialization (for a history that keeps it).</summary>
    public Func<ReadOnlyMemory<byte>, Serialization, ReadOnlyMemory<byte>> Transcode => transcode;

    /// <summary>Its number in the server's <see cref="EventHistory"/> (set before its messages are made), or 0.</summary>
    public long Number { get; set; }

    /// <summary>The payload in <paramref name="serialization"/>, encoded once.</summary>
    public ReadOnlyMemory<byte> Payload(Serialization serialization)
    {
        ref StrongBox<ReadOnlyMemory<byte>>? slot = ref serialization == Serialization.Json ? ref _jsonPayload : ref _messagePackPayload;
        return (slot ??= new(encode(serialization))).Value;
    }

    /// <summary>The event as sent to a subscriber in <paramref name="serialization"/> (with its number as <c>seq</c>, when the history numbered it).</summary>
    public IpyRpcMessage For(Serialization serialization)
    {
        ref IpyRpcMessage? slot = ref serialization == Serialization.Json ? ref _json : ref _messagePack;
        return slot ??= new IpyRpcMessage
        {
            Kind = MessageKind.Event,
            Function = name,
            Serialization = serialization,
            Parts = [Payload(serialization)],
            Sequence = Number == 0 ? null : Number,
        };
    }
}
