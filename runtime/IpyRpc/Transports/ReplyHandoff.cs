namespace IpyRpc.Transports;

/// <summary>
/// Lets a transport's receiving thread run a waiting caller's continuation itself, instead of queueing it to the
/// thread pool and waking a worker for it: the wake-up a small call otherwise pays on its way back.
/// </summary>
/// <remarks>
/// Safe only for a thread that nothing else waits on while the continuation runs, so that a continuation that
/// blocks or computes for long never stops a connection from receiving (and a caller that waits synchronously for
/// another reply still gets it): a receiving thread that hands receiving over to another thread first, or one whose
/// second thread takes receiving over from a continuation it finds still running (a ZeroMQ loop's), or a thread
/// that serves one exchange only (an HTTP client's read of one response). The pattern: on the receiving thread,
/// <see cref="Begin"/> before delivering what was received (replies completed meanwhile are held, not
/// completed), <see cref="End"/> after; then, when <see cref="HasReplies"/>, either hand receiving to another
/// thread and call <see cref="RunInline"/>, or call <see cref="RunQueued"/> (or, with a second thread that takes
/// over from a continuation it finds running, run them all in turn: <see cref="TakeBatch"/>). A thread that serves one request and
/// writes its response next (an HTTP request's) calls <see cref="RunInlineOnce"/> instead. What is held: final replies to this
/// side's own requests (output, progress and stream items are delivered as they arrive, before their reply), and
/// a job the in-memory queue hands to a waiting worker (that worker then runs the job on this thread).
/// </remarks>
public sealed class ReplyHandoff
{
    [ThreadStatic]
    private static ReplyHandoff? t_current;

    [ThreadStatic]
    private static ReplyHandoff? t_cached;

    [ThreadStatic]
    private static bool t_lentForOne;

    private readonly List<(IHeldCompletion Target, object? Value)> _held = [];

    private ReplyHandoff()
    {
    }

    /// <summary>Starts holding the replies this thread completes, until <see cref="End"/>.</summary>
    public static ReplyHandoff Begin()
    {
        ReplyHandoff handoff = t_cached ??= new ReplyHandoff();
        t_current = handoff;
        return handoff;
    }

    /// <summary>Whether replies were held.</summary>
    public bool HasReplies => _held.Count > 0;

    /// <summary>How many replies are held.</summary>
    public int HeldReplies => _held.Count;

    /// <summary>Stops holding replies (this thread completes them at once again); what was held stays held.</summary>
    public void End()
    {
        if (ReferenceEquals(t_current, this)) t_current = null;
    }

    /// <summary>
    /// Completes what was held: every reply but the last with its continuation queued to the thread pool, the
    /// last with its continuation run on this thread, now (it returns when that caller next waits, or finishes).
    /// </summary>
    public void RunInline()
    {
        End();
        if (_held.Count == 0) return;
        (IHeldCompletion last, object? value) = _held[^1];
        _held.RemoveAt(_held.Count - 1);
        RunQueued();
        RunHere(last, value);
    }

    /// <summary>Runs <paramref name="target"/>'s continuation on this thread, now.</summary>
    internal static void RunHere(IHeldCompletion target, object? value)
    {
        try
        {
            target.Complete(value, inline: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A continuation's own failure belongs to its task; an awaiter that throws here must not take the receiving thread down.
            System.Diagnostics.Debug.WriteLine(e);
        }
    }

    /// <summary>
    /// Completes what was held as <see cref="RunInline"/> does, for a thread lent to one request only: a request's
    /// own thread, which writes that request's response next (an HTTP request's). A queue worker whose continuation
    /// runs here runs the job it was handed and then gives the thread back: when it asks for its next job and one
    /// is already waiting, it goes on from the thread pool instead, so no response waits for another call's job.
    /// </summary>
    public void RunInlineOnce()
    {
        bool was = t_lentForOne;
        t_lentForOne = true;
        try
        {
            RunInline();
        }
        finally
        {
            t_lentForOne = was;
        }
    }

    /// <summary>Whether this thread is lent for one job only (<see cref="RunInlineOnce"/>): a worker asking for its next job here yields first.</summary>
    internal static bool LentForOne => t_lentForOne;

    /// <summary>
    /// Takes what was held as a batch whose continuations a receiving thread runs one after another
    /// (<see cref="HeldBatch.RunInline"/>), for a thread whose second thread takes over receiving from it when it finds
    /// it still running: that thread then queues the batch's remaining continuations to the thread pool
    /// (<see cref="HeldBatch.QueueRest"/>), so that none waits behind one that blocks (it may be waiting for one of them).
    /// </summary>
    public HeldBatch TakeBatch()
    {
        End();
        var batch = new HeldBatch([.. _held]);
        _held.Clear();
        return batch;
    }

    /// <summary>Completes what was held, every continuation queued to the thread pool.</summary>
    public void RunQueued()
    {
        End();
        foreach ((IHeldCompletion target, object? value) in _held) target.Complete(value, inline: false);
        _held.Clear();
    }

    /// <summary>Holds a claimed completion when this thread is between <see cref="Begin"/> and <see cref="End"/>.</summary>
    internal static bool TryDefer(IHeldCompletion target, object? value)
    {
        if (t_current is not { } handoff) return false;
        handoff._held.Add((target, value));
        return true;
    }
}

/// <summary>
/// Replies taken from a <see cref="ReplyHandoff"/> together: one thread runs their continuations in turn, and another
/// may queue the ones not yet begun to the thread pool at any moment; each runs once, in one way or the other.
/// </summary>
public sealed class HeldBatch
{
    private readonly (IHeldCompletion Target, object? Value)[] _items;
    private int _next;

    internal HeldBatch((IHeldCompletion Target, object? Value)[] items) => _items = items;

    /// <summary>Runs the continuations on this thread, one after another, until none is left (or the rest were queued).</summary>
    public void RunInline()
    {
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < _items.Length) ReplyHandoff.RunHere(_items[i].Target, _items[i].Value);
    }

    /// <summary>Queues the continuations not yet begun to the thread pool.</summary>
    public void QueueRest()
    {
        int i;
        while ((i = Interlocked.Increment(ref _next) - 1) < _items.Length) _items[i].Target.Complete(_items[i].Value, inline: false);
    }
}

/// <summary>Something waiting whose completion (already claimed) a <see cref="ReplyHandoff"/> may hold and run later.</summary>
internal interface IHeldCompletion
{
    /// <summary>Completes with <paramref name="value"/>; <paramref name="inline"/>: the waiter's continuation runs on this thread, now.</summary>
    void Complete(object? value, bool inline);
}
