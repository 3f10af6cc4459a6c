using System.Runtime.CompilerServices;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A client's event subscriptions: it asks the server for each pattern once, hands each arriving
/// event to every subscription it matches, and subscribes again after a reconnect.
/// </summary>
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
        IpyRpcSubscription[] all;
        lock (_subscriptions) all = [.. _subscriptions];
        foreach (IpyRpcSubscription s in all)
        {
            if (s.Matches(message.Function!)) s.Offer(message, dropped);
        }
    }

    /// <summary>Subscribes to <paramref name="pattern"/>; with a handler, a pump runs it for each event, in order.</summary>
    public async Task<IpyRpcSubscription> SubscribeAsync(string pattern, Func<IpyRpcMessage, CancellationToken, ValueTask>? handler, CancellationToken cancellationToken)
    {
        Glob.Validate(pattern);
        client.EnsureEventsCarried();
        var subscription = new IpyRpcSubscription(pattern, client.Options.EventBufferSize, UnsubscribeAsync);
        lock (_subscriptions)
        {
            _subscriptions.Add(subscription); // before asking, so no event published right after the answer is missed
        }

        try
        {
            IReadOnlyList<string> names = await client.SubscribeOnServerAsync(pattern, cancellationToken).ConfigureAwait(false);
            subscription.Events = names;
        }
        catch
        {
            lock (_subscriptions) _subscriptions.Remove(subscription);
            throw;
        }

        if (handler is not null) subscription.Pump = PumpAsync(subscription, handler);
        return subscription;
    }

    private static async Task PumpAsync(IpyRpcSubscription subscription, Func<IpyRpcMessage, CancellationToken, ValueTask> handler)
    {
        await Task.Yield();
        while (await subscription.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
        {
            while (subscription.Reader.TryRead(out IpyRpcMessage? message))
            {
                if (subscription.Stopping.IsCancellationRequested) return;
                await subscription.HandleAsync(handler, message).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads a subscription's events as an async stream, ending it when the enumeration stops.</summary>
    public async IAsyncEnumerable<IpyRpcMessage> ReadAsync(string pattern, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        IpyRpcSubscription subscription = await SubscribeAsync(pattern, null, cancellationToken).ConfigureAwait(false);
        try
        {
            while (true)
            {
                IpyRpcMessage? next = null;
                try
                {
                    if (!await subscription.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) yield break;
                    subscription.Reader.TryRead(out next);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    yield break;
                }

                if (next is not null) yield return next;
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

    /// <summary>After a reconnect: asks the new connection for every pattern again.</summary>
    public async Task ResubscribeAsync(Func<string, CancellationToken, Task<IReadOnlyList<string>>> subscribe, CancellationToken cancellationToken)
    {
        string[] patterns;
        lock (_subscriptions) patterns = [.. _subscriptions.Select(s => s.Pattern).Distinct()];
        foreach (string pattern in patterns)
        {
            await subscribe(pattern, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        IpyRpcSubscription[] all;
        lock (_subscriptions) all = [.. _subscriptions];
        foreach (IpyRpcSubscription s in all) await s.DisposeAsync().ConfigureAwait(false);
    }
}
