using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;

namespace IpyRpc.Transports;

/// <summary>
/// One direction of an in-process connection: frames in order, for a single reader that awaits them. A writer that
/// finds the reader waiting wakes it, and chooses how: its continuation queued to the thread pool (as a channel
/// does), or held by the writing thread's <see cref="DeferredWakes"/> and run there once what that thread runs now
/// is done, with no other thread woken.
/// </summary>
internal sealed class FrameQueue : IValueTaskSource<bool>, IDeferredWake, IThreadPoolWorkItem
{
    private readonly ConcurrentQueue<InProcessTransport.Frame> _items = new();
    private readonly object _writeGate = new(); // orders writes against completion
    private ManualResetValueTaskSourceCore<bool> _core; // the reader's wait; how its continuation runs is set per wake
    private int _waiting; // 1 while the reader waits; whoever sets it to 0 (a writer, completion, cancellation) completes _core
    private int _wakeHeld; // 1 while a writer's thread holds the waiting reader's wake-up; whoever sets it to 0 performs it
    private volatile bool _completed;
    private CancellationTokenRegistration _cancel; // the reader's, while it waits
    private CancellationToken _waitToken; // the token of the reader's current wait

    /// <summary>Adds <paramref name="frame"/>; false when the queue is completed. <paramref name="deferWake"/>: a waiting reader is woken by this thread later (see <see cref="DeferredWakes"/>), where it can be.</summary>
    public bool TryWrite(InProcessTransport.Frame frame, bool deferWake)
    {
        lock (_writeGate)
        {
            if (_completed) return false;
            _items.Enqueue(frame);
        }

        if (Volatile.Read(ref _waiting) == 1 && Interlocked.Exchange(ref _waiting, 0) == 1)
        {
            Volatile.Write(ref _wakeHeld, 1);
            if (!deferWake || !DeferredWakes.TryDefer(this)) Wake(inline: false); // unless a later write took it meanwhile
        }
        else if (Volatile.Read(ref _wakeHeld) == 1)
        {
            // The reader's wake-up is held by the thread that wrote before, for a lone call; this write means the call
            // is no longer alone: the reader is woken now rather than when that thread gets to it.
            Wake(inline: false);
        }

        return true;
    }

    /// <summary>Takes the next frame, if one is there.</summary>
    public bool TryRead(out InProcessTransport.Frame frame) => _items.TryDequeue(out frame);

    /// <summary>No more writes: the reader, once it has taken what is left, sees the end.</summary>
    public void Complete()
    {
        lock (_writeGate) _completed = true;
        if (Interlocked.Exchange(ref _waiting, 0) == 1) WakeNow(inline: false);
        else Wake(inline: false); // a wake-up held for the last write: now
    }

    /// <summary>Waits until a frame may be there (true) or the queue is completed and empty (false). One reader, one wait at a time.</summary>
    public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken)
    {
        if (!_items.IsEmpty) return new(true);
        if (_completed) return new(!_items.IsEmpty);
        if (cancellationToken.IsCancellationRequested) return ValueTask.FromCanceled<bool>(cancellationToken);
        _core.Reset();
        Interlocked.Exchange(ref _waiting, 1); // a fence: a write that enqueued before it is seen below, one after it sees the flag
        if (!_items.IsEmpty || _completed)
        {
            // A write or the completion came between the look and the flag: take the wait back, unless its writer
            // already took it (and completes it).
            if (Interlocked.Exchange(ref _waiting, 0) == 1) return new(!_items.IsEmpty);
        }

        if (cancellationToken.CanBeCanceled)
        {
            _waitToken = cancellationToken;
            _cancel = cancellationToken.UnsafeRegister(static (s, token) => ((FrameQueue)s!).Cancelled(token), this);
        }

        return new ValueTask<bool>(this, _core.Version);
    }

    private void Cancelled(CancellationToken token)
    {
        // A registration of an earlier wait, whose callback ran late, cancels no later wait with another token.
        if (token != _waitToken || Interlocked.Exchange(ref _waiting, 0) != 1) return;
        _core.RunContinuationsAsynchronously = true;
        _core.SetException(new OperationCanceledException(token));
    }

    /// <summary>Performs the held wake-up, unless a later write or the watch did already: the reader's continuation runs here, now (<paramref name="inline"/>), or on the thread pool.</summary>
    public void Wake(bool inline)
    {
        if (Interlocked.Exchange(ref _wakeHeld, 0) == 1) WakeNow(inline);
    }

    /// <summary>Completes the reader's wait, which this thread has taken.</summary>
    private void WakeNow(bool inline)
    {
        if (!inline)
        {
            // To the pool's global queue, in turn with everything else (as a channel does): the core's own queueing
            // would put it in this thread's local queue, whose newest item runs first, so that a few readers' wakes
            // overtook the rest's again and again.
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            return;
        }

        _core.RunContinuationsAsynchronously = false;
        _core.SetResult(true);
    }

    void IThreadPoolWorkItem.Execute() => WakeNow(inline: true);

    bool IValueTaskSource<bool>.GetResult(short token)
    {
        _cancel.Unregister();
        _cancel = default;
        _waitToken = default;
        return _core.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}
