using System.Runtime.CompilerServices;
using IpyRpc.Formatting;
using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A client's event subscriptions: it asks the server for each pattern, hands each arriving event to every subscription
/// it matches, and subscribes again after a reconnect, asking a server that keeps a history of its events
/// (<see cref="IpyRpcServerOptions.EventHistory"/>) for those each pattern missed meanwhile.
/// </summary>
/// <remarks>
/// The events of a server that keeps a history are numbered (<c>seq</c>), and a connection hears them in number order.
/// A subscription remembers the number of the last one it heard. After a reconnect, each pattern's subscribe asks to
/// resume after the oldest of those (<c>{"resume": "EPOCH-N"}</c>); the server sends the events the pattern missed, as
/// answers to that subscribe (they carry its id), then the live ones, and its answer says from which number the live ones
/// start. Until that answer comes, the live events a subscription matches (sent for another pattern of this client) wait:
/// the ones numbered up to the start come again in the replay, where they belong. Every subscription takes each number
/// once, so an event two patterns match reaches each of their subscriptions once, in order.
/// </remarks>
internal sealed class EventHub(IpyRpcClient client) : IAsyncDisposable
{
    private readonly List<IpyRpcSubscription> _subscriptions = [];
    private long _droppedByServer;

    /// <summary>Events the server dropped for this connection because it fell behind (it says so in the next event it sends).</summary>
    public long DroppedByServer => Interlocked.Read(ref _droppedByServer);

    /// <summary>Hands an event to its subscriptions (on the receiving thread: never blocks).</summary>
    public void Deliver(IpyRpcMessage message)
    {
        long dropped = message.Dropped ?? 0;
        if (dropped > 0) Interlocked.Add(ref _droppedByServer, dropped);
        string name = message.Function!;
        lock (_subscriptions)
        {
            foreach (IpyRpcSubscription s in _subscriptions)
            {
                if (!s.Matches(name)) continue;
                if (dropped > 0) s.DroppedByServer(dropped);
                if (message.Sequence is null) s.Offer(message); // from a server that numbers nothing: as they come
                else if (s.Awaiting) s.Hold(message); // until the answer says where it starts and what was missed
                else s.Take(message);
            }
        }
    }

    /// <summary>Subscribes to <paramref name="pattern"/>; with a handler, a pump runs it for each event, in order.</summary>
    public async Task<IpyRpcSubscription> SubscribeAsync(string pattern, Func<IpyRpcSubscription.Heard, CancellationToken, ValueTask>? handler, SubscribeOptions? options, CancellationToken cancellationToken)
    {
        Glob.Validate(pattern);
        client.EnsureEventsCarried();
        var subscription = new IpyRpcSubscription(pattern, client.Options.EventBufferSize, UnsubscribeAsync);
        if (options?.ResumeAfter is { Length: > 0 } after) subscription.ResumeAfter(after);
        if (options?.Gap is { } gap) subscription.Gap += gap;
        lock (_subscriptions)
        {
            _subscriptions.Add(subscription); // before asking, so no event published right after the answer is missed
        }

        try
        {
            IpyRpcMessage reply = await client.SubscribeOnServerAsync(() => Ask(pattern, subscription), cancellationToken).ConfigureAwait(false);
            subscription.Events = Settle(pattern, reply);
        }
        catch
        {
            lock (_subscriptions) _subscriptions.Remove(subscription);
            throw;
        }

        if (handler is not null) subscription.Pump = PumpAsync(subscription, handler);
        return subscription;
    }

    // A subscribe for every subscription to `pattern` (or for a new one alone, which the others need not wait for): they
    // wait for its answer, and those that heard events from a server that numbers them ask to resume after the oldest
    // number any of them heard last.
    private (IpyRpcMessage Request, PendingRequest Ask) Ask(string pattern, IpyRpcSubscription? only = null)
    {
        var ask = new PendingRequest();
        string? resume = null;
        lock (_subscriptions)
        {
            long oldest = long.MaxValue;
            foreach (IpyRpcSubscription s in _subscriptions)
            {
                if (s.Pattern != pattern || (only is not null && s != only)) continue;
                s.Asked(ask);
                if (s.Epoch is not null && s.Last < oldest)
                {
                    oldest = s.Last;
                    resume = $"{s.Epoch}-{s.Last}";
                }
            }
        }

        Serialization serialization = client.Options.Serialization;
        var request = new IpyRpcMessage
        {
            Kind = MessageKind.Subscribe,
            Function = pattern,
            Serialization = serialization,
            Parts = resume is null ? [] : [JobCodec.Encode(new Dictionary<string, object?> { ["resume"] = resume }, serialization)],
        };
        return (request, ask);
    }

    // The server's answer to a subscribe: the names it matches (part 0) and, from a server that keeps a history, where the
    // subscription starts and what it could not replay (part 1). Settles the subscriptions waiting for this answer.
    private IReadOnlyList<string> Settle(string pattern, IpyRpcMessage reply)
    {
        IReadOnlyList<string> names = [.. IpyRpcPeer.Decode(reply, FormatterRegistry.Get<string?[]>(), "subscribe").Select(n => n ?? "")];
        (string Epoch, long Start)? start = null;
        EventGap? missed = null;
        if (reply.Parts.Count > 1 && JobCodec.Decode(reply.Parts[1].Span, reply.Serialization) is Dictionary<string, object?> resumed)
        {
            if (IpyRpcSubscription.TryParseEventId(resumed.GetValueOrDefault("start") as string, out string epoch, out long number)) start = (epoch, number);

            if (resumed.GetValueOrDefault("missed") is Dictionary<string, object?> gap)
            {
                missed = new EventGap(gap.GetValueOrDefault("reason") as string ?? "unknown", gap.GetValueOrDefault("message") as string ?? "");
            }
        }

        // A gap is told before any event replayed or held is handed over, so a handler that hears it knows the events
        // after it come after the gap.
        List<(IpyRpcSubscription, EventGap?)> settled = [];
        lock (_subscriptions)
        {
            foreach (IpyRpcSubscription s in _subscriptions)
            {
                if (s.Pattern == pattern && s.Answered(reply.Id)) settled.Add((s, s.Settle(start, missed)));
            }
        }

        foreach ((IpyRpcSubscription s, EventGap? gap) in settled)
        {
            if (gap is not null) s.RaiseGap(gap);
        }

        lock (_subscriptions)
        {
            foreach ((IpyRpcSubscription s, _) in settled) s.Release();
        }

        return names;
    }

    private static async Task PumpAsync(IpyRpcSubscription subscription, Func<IpyRpcSubscription.Heard, CancellationToken, ValueTask> handler)
    {
        await Task.Yield();
        while (await subscription.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (subscription.Reader.TryRead(out IpyRpcSubscription.Heard heard))
            {
                if (subscription.Stopping.IsCancellationRequested) return;
                await subscription.HandleAsync(handler, heard).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads a subscription's events as an async stream, ending it when the enumeration stops.</summary>
    public async IAsyncEnumerable<IpyRpcSubscription.Heard> ReadAsync(string pattern, SubscribeOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        IpyRpcSubscription subscription = await SubscribeAsync(pattern, null, options, cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                IpyRpcSubscription.Heard next = default;
                try
                {
                    if (!await subscription.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) yield break;
                    subscription.Reader.TryRead(out next);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    yield break;
                }

                if (next.Message is null) continue;
                subscription.Handed(next);
                yield return next;
            }
        }
        finally
        {
            await subscription.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask UnsubscribeAsync(IpyRpcSubscription subscription)
    {
        bool last;
        lock (_subscriptions)
        {
            _subscriptions.Remove(subscription);
            last = !_subscriptions.Any(s => s.Pattern == subscription.Pattern);
        }

        if (last && client.IsConnected) await client.UnsubscribeOnServerAsync(subscription.Pattern).ConfigureAwait(false);
    }

    /// <summary>
    /// After a reconnect: asks the new connection for every pattern again, each resuming where its subscriptions left off.
    /// Every subscription waits for its pattern's answer from the start, so that no live event sent meanwhile for another
    /// pattern gets ahead of its replay.
    /// </summary>
    public async Task ResubscribeAsync(Func<IpyRpcMessage, PendingRequest, CancellationToken, Task<IpyRpcMessage>> send, CancellationToken cancellationToken)
    {
        string[] patterns;
        lock (_subscriptions)
        {
            foreach (IpyRpcSubscription s in _subscriptions) s.Asked(null);
            patterns = [.. _subscriptions.Select(s => s.Pattern).Distinct()];
        }

        foreach (string pattern in patterns)
        {
            (IpyRpcMessage request, PendingRequest ask) = Ask(pattern);
            IpyRpcMessage reply = await send(request, ask, cancellationToken).ConfigureAwait(false);
            Settle(pattern, reply);
        }
    }

    public async ValueTask DisposeAsync()
    {
        IpyRpcSubscription[] all;
        lock (_subscriptions) all = [.. _subscriptions];
        foreach (IpyRpcSubscription s in all) await s.DisposeAsync().ConfigureAwait(false);
    }
}
