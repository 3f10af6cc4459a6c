using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The events waiting for one connection, in order. The publisher only queues (never waits); the
/// outbox sends one at a time as the transport takes them. When a connection falls
/// <see cref="IpyRpcServerOptions.EventBufferSize"/> events behind, the overflow policy drops or
/// disconnects, and the next event delivered carries the count of those dropped.
/// </summary>
internal sealed class EventOutbox(Func<IpyRpcMessage, ValueTask<bool>> send, Action<string> overflowed, int capacity, EventOverflow policy)
{
    private readonly Queue<IpyRpcMessage> _queue = new();
    private bool _sending;
    private bool _closed;
    private long _dropped;
    private long _queued; // events queued so far
    private long _done; // of those, sent or dropped
    private List<(long Upto, TaskCompletionSource Done)>? _waiters;

    /// <summary>How many events wait now.</summary>
    public int Waiting
    {
        get
        {
            lock (_queue) return _queue.Count;
        }
    }

    /// <summary>
    /// Queues <paramref name="message"/> without sending anything: the publisher queues an event for every connection
    /// (under the history's lock, when it numbers them), then calls <see cref="Then"/> on what this returns once it has
    /// (a send can run the transport's code).
    /// </summary>
    public Posted Queue(IpyRpcMessage message)
    {
        lock (_queue)
        {
            if (_closed) return Posted.Nothing;
            if (_queue.Count >= capacity)
            {
                switch (policy)
                {
                    case EventOverflow.DropOldest:
                        _queue.Dequeue();
                        _dropped++;
                        Done(1);
                        break;
                    case EventOverflow.DropNewest:
                        _dropped++;
                        _queued++;
                        Done(1);
                        return Posted.Nothing;
                    default:
                        CloseLocked();
                        return Posted.Overflowed;
                }
            }

            _queue.Enqueue(message);
            _queued++;
            if (_sending) return Posted.Nothing;
            _sending = true;
            return Posted.Drain;
        }
    }

    /// <summary>Does what <see cref="Queue"/> left to do: starts sending, or tells the connection it fell too far behind.</summary>
    public void Then(Posted posted)
    {
        if (posted == Posted.Drain) _ = DrainAsync();
        else if (posted == Posted.Overflowed) overflowed($"This connection fell {capacity} events behind, and the server disconnects subscribers that do (EventOverflow.Disconnect).");
    }

    /// <summary>Completes when every event queued so far has been sent (or dropped, or the outbox closed).</summary>
    public Task SentAsync()
    {
        lock (_queue)
        {
            if (_closed || _done >= _queued) return Task.CompletedTask;
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (_waiters ??= []).Add((_queued, done));
            return done.Task;
        }
    }

    // Counts events sent or dropped, completing the waits they end. Hold the lock.
    private void Done(long count)
    {
        _done += count;
        if (_waiters is not { Count: > 0 } waiters) return;
        for (int i = waiters.Count - 1; i >= 0; i--)
        {
            if (_done < waiters[i].Upto) continue;
            waiters[i].Done.TrySetResult();
            waiters.RemoveAt(i);
        }
    }

    /// <summary>What is left to do after an event is queued.</summary>
    public enum Posted
    {
        Nothing,
        Drain,
        Overflowed,
    }

    private async Task DrainAsync()
    {
        bool sentOne = false;
        while (true)
        {
            IpyRpcMessage next;
            lock (_queue)
            {
                if (sentOne) Done(1);
                sentOne = false;
                if (_closed || !_queue.TryDequeue(out next!))
                {
                    _sending = false;
                    return;
                }

                if (_dropped > 0)
                {
                    next = next with { Dropped = _dropped };
                    _dropped = 0;
                }
            }

            // Synchronous transports (in process, ZeroMQ) complete at once: the loop runs on the publisher's thread without a hop.
            ValueTask<bool> sending = send(next);
            bool sent = sending.IsCompletedSuccessfully ? sending.Result : await sending.ConfigureAwait(false);
            if (!sent)
            {
                Close();
                return;
            }

            sentOne = true;
        }
    }

    public void Close()
    {
        lock (_queue) CloseLocked();
    }

    private void CloseLocked()
    {
        _closed = true;
        _queue.Clear();
        foreach ((_, TaskCompletionSource done) in _waiters ?? []) done.TrySetResult();
        _waiters = null;
    }
}
