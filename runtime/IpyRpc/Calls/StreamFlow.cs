namespace IpyRpc;

/// <summary>
/// The callee's side of a stream's flow control: it may send as many items as the caller's window,
/// and more only as the caller grants credit for items it consumed (<c>credit</c> messages). A batch
/// is sent whenever any credit is left, so a batch larger than the window cannot wedge the stream.
/// </summary>
internal sealed class StreamFlow(long window)
{
    private readonly object _gate = new();
    private long _available = window;

    /// <summary>The caller's window: how many items it buffers.</summary>
    public long Window { get; } = window;
    private TaskCompletionSource? _waiter;

    /// <summary>The caller consumed <paramref name="items"/> more.</summary>
    public void Grant(long items)
    {
        if (items <= 0) return;
        TaskCompletionSource? waiter;
        lock (_gate)
        {
            _available += items;
            waiter = _waiter;
            _waiter = null;
        }

        waiter?.TrySetResult();
    }

    /// <summary>Waits until some credit is left, then takes <paramref name="items"/> of it.</summary>
    public async ValueTask TakeAsync(int items, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (_available > 0)
                {
                    _available -= items;
                    return;
                }

                wait = (_waiter ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
