using System.Threading.Channels;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A client's subscription to the events matching <see cref="Pattern"/>. Events wait in a buffer of
/// <see cref="IpyRpcClientOptions.EventBufferSize"/> for the handler (or the enumerator); when it is
/// full the oldest is dropped, so a slow handler never holds up the connection. Dispose it to stop.
/// </summary>
/// <remarks>
/// It survives reconnects: the client subscribes again, and a server that keeps a history of its events
/// (<see cref="IpyRpcServerOptions.EventHistory"/>) first sends the events it matches that were published while the client
/// was away, once and in order, then the live ones. When that cannot be everything it missed (more were published than
/// the server keeps, the client came back to another server or a restarted one, the server keeps no history), it says
/// so with <see cref="Gap"/>: the time to fetch afresh whatever state the events were keeping up to date.
/// <see cref="LastEventId"/> says where it is, for a client started later to go on from there
/// (<see cref="SubscribeOptions.ResumeAfter"/>).
/// </remarks>
public sealed class IpyRpcSubscription : IAsyncDisposable
{
    private static readonly AsyncLocal<IpyRpcSubscription?> InHandler = new();
    private readonly Channel<Heard> _buffer;
    private readonly Func<IpyRpcSubscription, ValueTask> _unsubscribe;
    private readonly CancellationTokenSource _stop = new();
    private readonly int _capacity;
    private long _received;
    private long _dropped;
    private long _replayed;
    private long _gaps;
    private int _disposed;

    // Where it resumes after a reconnect (under the hub's lock): the epoch of the history its server numbers events in
    // (null: its server numbers none), the number of the last event it heard (or where it started), the subscribe it waits
    // for the answer of and the one whose replayed events it takes, the live events held meanwhile.
    private PendingRequest? _ask;
    private PendingRequest? _replays;
    private Queue<IpyRpcMessage>? _held;
    private bool _confirmed;
    private bool _resumeAsked; // asked to resume after an id given when subscribing (SubscribeOptions.ResumeAfter)

    // The id of the last event handed over (or of where it started), for LastEventId: its epoch and number.
    private readonly Lock _position = new();
    private string? _positionEpoch;
    private long _positionNumber;

    internal IpyRpcSubscription(string pattern, int capacity, Func<IpyRpcSubscription, ValueTask> unsubscribe)
    {
        Pattern = pattern;
        _capacity = Math.Max(1, capacity);
        _unsubscribe = unsubscribe;
        _buffer = Channel.CreateBounded<Heard>(
            new BoundedChannelOptions(Math.Max(1, capacity)) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true, SingleWriter = true },
            _ => Interlocked.Increment(ref _dropped));
    }

    /// <summary>The event name or glob subscribed to.</summary>
    public string Pattern { get; }

    /// <summary>The events the server said match <see cref="Pattern"/> (and this client may receive), as of subscribing.</summary>
    public IReadOnlyList<string> Events { get; internal set; } = [];

    /// <summary>How many events arrived for this subscription.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>How many events this subscription missed: dropped from its full buffer here, or by the server for a connection that fell behind.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>How many of its events came again after reconnects, from the server's history: events published while the client was away.</summary>
    public long Replayed => Interlocked.Read(ref _replayed);

    /// <summary>How many times, after a reconnect, the server could not give it every event it missed (<see cref="Gap"/>).</summary>
    public long Gaps => Interlocked.Read(ref _gaps);

    /// <summary>The last time the server could not give it every event it missed while the client was away, or <see langword="null"/>.</summary>
    public EventGap? LastGap { get; private set; }

    /// <summary>
    /// Raised when the client has subscribed again after a reconnect and the server could not give this subscription every
    /// event it missed meanwhile, before any event after the gap is handed over (on the thread that read the server's
    /// answer: return quickly). The events the server did replay follow.
    /// </summary>
    public event Action<IpyRpcSubscription, EventGap>? Gap;

    /// <summary>
    /// The id of the last event this subscription handed over (once its handler returned for it), or, before any, of where
    /// it started; <see langword="null"/> when its server keeps no history of its events
    /// (<see cref="IpyRpcServerOptions.EventHistory"/>). Keep it to go on from there later, from this client or another
    /// one (<see cref="SubscribeOptions.ResumeAfter"/>), while the server still keeps what came after.
    /// </summary>
    public string? LastEventId
    {
        get
        {
            lock (_position) return _positionEpoch is null ? null : $"{_positionEpoch}-{_positionNumber}";
        }
    }

    /// <summary>The last exception a handler threw (handlers' failures do not end the subscription).</summary>
    public Exception? LastHandlerError { get; private set; }

    internal CancellationToken Stopping => _stop.Token;

    internal ChannelReader<Heard> Reader => _buffer.Reader;

    internal Task Pump { get; set; } = Task.CompletedTask;

    internal bool Matches(string name) => Glob.IsLiteral(Pattern) ? Pattern == name : Internal.GlobMatcher.IsMatch(Pattern, name);

    /// <summary>Takes an event (on the receiving thread: never blocks).</summary>
    internal void Offer(IpyRpcMessage message)
    {
        Interlocked.Increment(ref _received);
        _buffer.Writer.TryWrite(new Heard(message, Epoch));
    }

    /// <summary>An event waiting to be handed over, with the epoch of the history that numbered it (for <see cref="LastEventId"/>).</summary>
    internal readonly record struct Heard(IpyRpcMessage Message, string? Epoch)
    {
        /// <summary>Its id (<c>EPOCH-NUMBER</c>), or <see langword="null"/> when no history numbered it.</summary>
        public string? Id => Epoch is not null && Message.Sequence is long number ? $"{Epoch}-{number}" : null;
    }

    /// <summary>An event was handed over: <see cref="LastEventId"/> is its id from now on.</summary>
    internal void Handed(Heard heard)
    {
        if (heard is { Epoch: { } epoch, Message.Sequence: long number }) Position(epoch, number);
    }

    private void Position(string? epoch, long number)
    {
        lock (_position)
        {
            _positionEpoch = epoch;
            _positionNumber = number;
        }
    }

    /// <summary>Splits an event id (<c>EPOCH-NUMBER</c>) into the epoch of the history that gave it and the number.</summary>
    internal static bool TryParseEventId(string? id, out string epoch, out long number)
    {
        int dash = id?.LastIndexOf('-') ?? -1;
        epoch = dash > 0 ? id![..dash] : "";
        number = 0;
        return dash > 0 && long.TryParse(id.AsSpan(dash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out number);
    }

    /// <summary>Asks, at its first subscribe, to resume after <paramref name="id"/> (an event id: <c>EPOCH-NUMBER</c>).</summary>
    /// <exception cref="ArgumentException">Not an event id.</exception>
    internal void ResumeAfter(string id)
    {
        if (!TryParseEventId(id, out string epoch, out long number))
        {
            throw new ArgumentException($"'{id}' is not an event id (EPOCH-NUMBER, such as a subscription's LastEventId).", nameof(id));
        }

        Epoch = epoch;
        Last = number;
        _resumeAsked = true;
        Position(Epoch, number);
    }

    /// <summary>Counts events the server dropped for this connection (it fell behind).</summary>
    internal void DroppedByServer(long count) => Interlocked.Add(ref _dropped, count);

    // The rest runs under the hub's lock.

    internal string? Epoch { get; private set; }

    internal long Last { get; private set; }

    /// <summary>Waiting for the answer to a subscribe: live events are held until it says where they start.</summary>
    internal bool Awaiting { get; private set; }

    private long _liveAfter;

    // What it waits for when a reconnect has begun renewing every subscription, before its own pattern's subscribe is made.
    private static readonly PendingRequest Renewing = new();

    /// <summary>A subscribe was asked for it (<paramref name="ask"/>; <see langword="null"/>: one will be, the connection is new).</summary>
    internal void Asked(PendingRequest? ask)
    {
        Awaiting = true;
        _ask = ask ?? Renewing;
        if (ask is not null) _replays = ask;
    }

    /// <summary>Whether <paramref name="id"/> answers the subscribe it waits for.</summary>
    internal bool Answered(ulong id) => Awaiting && _ask is { } ask && ask.Id == id;

    internal void Hold(IpyRpcMessage message)
    {
        _held ??= new();
        if (_held.Count >= _capacity) // bounded as the buffer is: the oldest go
        {
            _held.Dequeue();
            Interlocked.Increment(ref _dropped);
        }

        _held.Enqueue(message);
    }

    /// <summary>
    /// Takes a numbered event it is not waiting for an answer for: replayed (answering the subscribe it asked to resume
    /// with), or live (numbered after where its server said it starts); each number once, in order.
    /// </summary>
    internal void Take(IpyRpcMessage message)
    {
        long number = message.Sequence!.Value;
        if (message.Id != 0)
        {
            if (_replays is not { } ask || message.Id != ask.Id || Epoch is null || number <= Last) return;
            Interlocked.Increment(ref _replayed);
        }
        else if (Epoch is null)
        {
            Offer(message); // its server gave no start: it resumes nothing
            return;
        }
        else if (number <= _liveAfter || number <= Last)
        {
            return; // came (or comes) replayed
        }

        Last = number;
        Offer(message);
    }

    /// <summary>
    /// The answer it waited for: where its live events start (<paramref name="start"/>, from a server that keeps a history)
    /// and what the server could not replay. Returns the gap to tell, when it was subscribed before (a reconnect renewed it);
    /// the events held are handed over by <see cref="Release"/>, after the gap is told.
    /// </summary>
    internal EventGap? Settle((string Epoch, long Start)? start, EventGap? missed)
    {
        bool renewed = _confirmed || _resumeAsked; // (asked to resume: told as a renewal is)
        _confirmed = true;
        _resumeAsked = false;
        _ask = null;
        EventGap? gap = null;
        if (start is { } s)
        {
            if (Epoch != s.Epoch || missed?.Reason == "unknown_id")
            {
                // Subscribed for the first time, or to a history it did not resume from: it starts now.
                if (renewed) gap = missed ?? new EventGap("not_kept", "The server this subscription was on kept no history of its events, so it could not ask for the ones published while the client was away: they may be lost.");
                Epoch = s.Epoch;
                Last = s.Start;
                Position(Epoch, Last);
            }
            else
            {
                gap = missed;
            }

            _liveAfter = s.Start;
        }
        else
        {
            if (renewed) gap = new EventGap("not_kept", "The server keeps no history of its events (IpyRpcServerOptions.EventHistory is 0): events published while the client was away are lost.");
            Epoch = null;
            Position(null, 0);
        }

        if (gap is not null)
        {
            Interlocked.Increment(ref _gaps);
            LastGap = gap;
        }

        return gap;
    }

    /// <summary>Hands over the events held while it waited for its answer (replayed, then live), unless it waits for another one now.</summary>
    internal void Release()
    {
        if (_ask is not null) return; // asked again meanwhile (another reconnect): that answer releases them
        Awaiting = false;
        Queue<IpyRpcMessage>? held = _held;
        _held = null;
        if (held is null) return;
        foreach (IpyRpcMessage m in held) Take(m);
    }

    /// <summary>Raises <see cref="Gap"/> (outside the hub's lock); a handler's exception is kept, as an event handler's is.</summary>
    internal void RaiseGap(EventGap gap)
    {
        try
        {
            Gap?.Invoke(this, gap);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Failed(e);
        }
    }

    internal void Failed(Exception e) => LastHandlerError = e;

    /// <summary>Runs the handler for one event, noting that this flow is inside it (a handler may dispose its own subscription).</summary>
    internal async ValueTask HandleAsync(Func<Heard, CancellationToken, ValueTask> handler, Heard heard)
    {
        InHandler.Value = this;
        try
        {
            await handler(heard, _stop.Token).ConfigureAwait(false);
            Handed(heard);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Failed(e);
        }
        finally
        {
            InHandler.Value = null;
        }
    }

    /// <summary>Ends the subscription: the server stops sending its events (when no other subscription of this client shares the pattern) and the handler stops.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _buffer.Writer.TryComplete();
        _stop.Cancel();
        try
        {
            await _unsubscribe(this).ConfigureAwait(false);
        }
        catch (IpyRpcException)
        {
            // The connection is gone: nothing is sent any more anyway.
        }

        if (InHandler.Value != this) await Pump.ConfigureAwait(false); // no handler runs after this returns (unless it is the one disposing)
    }
}

/// <summary>Why a subscription did not hear every event it missed while its client was away.</summary>
/// <param name="Reason">
/// <c>expired</c>: more were published than the server keeps (<see cref="IpyRpcServerOptions.EventHistory"/>);
/// <c>unknown_id</c>: the client came back to another server, or to this one restarted; <c>not_kept</c>: the server keeps no
/// history of its events.
/// </param>
/// <param name="Message">The same, for people.</param>
public sealed record EventGap(string Reason, string Message);

/// <summary>How a subscription starts.</summary>
public sealed record SubscribeOptions
{
    /// <summary>
    /// The id of an event heard before (a subscription's <see cref="IpyRpcSubscription.LastEventId"/>, kept by this client
    /// or an earlier one, or an <c>id:</c> of the HTTP event stream): the subscription first hears the events it matches
    /// that were published after it, once and in order, then the live ones. When the server no longer keeps them all,
    /// did not give the id (it restarted, another server gave it) or keeps no history, <see cref="Gap"/> says so.
    /// <see langword="null"/> (or empty): from now on.
    /// </summary>
    public string? ResumeAfter { get; init; }

    /// <summary>
    /// A handler for <see cref="IpyRpcSubscription.Gap"/>, attached before the subscribe is sent, so that a
    /// <see cref="ResumeAfter"/> the server cannot replay in full is told before any event is handed over.
    /// </summary>
    public Action<IpyRpcSubscription, EventGap>? Gap { get; init; }
}
