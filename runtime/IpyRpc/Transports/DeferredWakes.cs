using System.Collections.Concurrent;

namespace IpyRpc.Transports;

/// <summary>A waiting reader whose wake-up a thread took on (see <see cref="DeferredWakes"/>).</summary>
internal interface IDeferredWake
{
    /// <summary>Wakes the reader: its continuation runs on this thread, now (<paramref name="inline"/>), or on the thread pool.</summary>
    void Wake(bool inline);
}

/// <summary>
/// Wake-ups a thread holds until what it runs now is done, and then performs itself: an in-process call's request,
/// sent by a caller's continuation running on a receive loop's lent thread, is taken in by the server's loop on that
/// same thread once the caller's continuation has returned, instead of on a thread-pool thread woken for it; the
/// reply, sent by a job on the server loop's lent thread, likewise. A small call in process then wakes no thread
/// at all, and a run of them stays on one thread. (On two cores the thread-pool threads woken for every hop spin
/// while they look for work and take the core from the thread doing it.)
/// </summary>
/// <remarks>
/// Held only while the thread runs something lent to it by a receive loop (<see cref="LendingReceive"/>), or is
/// performing held wake-ups: only there is it known to return soon to a place that can perform them. What it runs
/// may block instead (a caller waiting synchronously for the reply to the request it just sent): a watch thread that
/// looks every millisecond, while any wake-up is held, queues to the thread pool those a thread has held since its
/// last look without performing any, so a held wake-up waits at most about two milliseconds. Performing them is
/// trampolined: a wake-up performed here whose reader, in turn, holds another adds it to the same list, and the
/// outermost loop performs it; the stack does not grow with a run of calls.
/// </remarks>
internal sealed class DeferredWakes
{
    [ThreadStatic]
    private static DeferredWakes? t_current;

    private readonly object _gate = new();
    private readonly Queue<IDeferredWake> _held = new(); // under _gate
    private long _performed; // wake-ups taken from _held by this thread or the watch; under _gate
    private bool _watched; // in the watch's list; under _gate
    private int _depth; // lent runs open on this thread (this thread only)
    private bool _performing; // this thread is performing held wake-ups (this thread only)
    private const int MaxInline = 256; // held wake-ups performed in one turn before the rest go to the thread pool

    /// <summary>Marks the start of something lent to this thread, whose in-process sends may hold wake-ups; pair with <see cref="Exit"/>.</summary>
    public static DeferredWakes Enter()
    {
        DeferredWakes wakes = t_current ??= new DeferredWakes();
        wakes._depth++;
        return wakes;
    }

    /// <summary>Marks the end of a lent run; the outermost performs the wake-ups held meanwhile, each reader's continuation on this thread.</summary>
    public void Exit()
    {
        if (--_depth > 0 || _performing) return;
        _performing = true;
        try
        {
            for (int performed = 0; ; performed++)
            {
                IDeferredWake next;
                lock (_gate)
                {
                    if (!_held.TryDequeue(out next!)) return;
                    _performed++;
                }

                if (performed == MaxInline)
                {
                    // Enough for one turn: the rest go to the thread pool, and this thread goes back to it, so that
                    // a run of calls on it never keeps the pool from other work (the other callers' continuations).
                    next.Wake(inline: false);
                    QueueHeld();
                    return;
                }

                try
                {
                    next.Wake(inline: true);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A reader's own failure belongs to its loop; it must not take this thread down.
                    System.Diagnostics.Debug.WriteLine(e);
                }
            }
        }
        finally
        {
            _performing = false;
        }
    }

    /// <summary>Wakes every held reader on the thread pool.</summary>
    private void QueueHeld()
    {
        IDeferredWake[] rest;
        lock (_gate)
        {
            rest = [.. _held];
            _held.Clear();
            _performed += rest.Length;
        }

        foreach (IDeferredWake wake in rest) wake.Wake(inline: false);
    }

    /// <summary>Holds <paramref name="wake"/> for this thread to perform, if it is running something lent to it; false otherwise (the caller wakes the reader itself).</summary>
    public static bool TryDefer(IDeferredWake wake)
    {
        if (t_current is not { } wakes || (wakes._depth == 0 && !wakes._performing)) return false;
        lock (wakes._gate)
        {
            wakes._held.Enqueue(wake);
            if (!wakes._watched)
            {
                wakes._watched = true;
                Watch.Add(wakes, wakes._performed);
            }
        }

        return true;
    }

    /// <summary>The watch's look: queues the held wake-ups to the thread pool if none was performed since <paramref name="performedBefore"/>; true while some stay held.</summary>
    private bool Look(long performedBefore, out long performedNow)
    {
        lock (_gate)
        {
            performedNow = _performed;
            if (_held.Count > 0 && _performed != performedBefore) return true;
            _watched = false;
        }

        QueueHeld(); // stuck (or nothing left to queue)
        return false;
    }

    /// <summary>The thread that queues held wake-ups a blocked thread cannot perform.</summary>
    private static class Watch
    {
        private const int PeriodMs = 1;
        private const int IdleLooksBeforeSleep = 200;
        private static readonly ConcurrentQueue<(DeferredWakes Wakes, long Performed, bool Seen)> s_watched = new();
        private static readonly object s_gate = new();
        private static bool s_started; // under s_gate
        private static int s_asleep; // 1 while the watch waits to be woken

        public static void Add(DeferredWakes wakes, long performed)
        {
            s_watched.Enqueue((wakes, performed, false));
            if (Volatile.Read(ref s_asleep) == 1 || !Volatile.Read(ref s_started))
            {
                lock (s_gate)
                {
                    if (!s_started)
                    {
                        s_started = true;
                        new Thread(Run) { IsBackground = true, Name = "IpyRpc held wake-ups" }.Start();
                    }

                    Monitor.Pulse(s_gate);
                }
            }
        }

        private static void Run()
        {
            int idle = 0;
            while (true)
            {
                if (s_watched.IsEmpty && ++idle >= IdleLooksBeforeSleep)
                {
                    lock (s_gate)
                    {
                        Interlocked.Exchange(ref s_asleep, 1); // a fence: an Add that enqueued before it is seen below, one after it sees the flag
                        while (s_watched.IsEmpty) Monitor.Wait(s_gate);
                        Volatile.Write(ref s_asleep, 0);
                    }

                    idle = 0;
                }

                Thread.Sleep(PeriodMs);
                if (!s_watched.IsEmpty) idle = 0;
                for (int n = s_watched.Count; n > 0 && s_watched.TryDequeue(out var entry); n--)
                {
                    if (!entry.Seen)
                    {
                        // Held since some time within the last period: look again at the next.
                        s_watched.Enqueue((entry.Wakes, entry.Performed, true));
                    }
                    else if (entry.Wakes.Look(entry.Performed, out long performed))
                    {
                        s_watched.Enqueue((entry.Wakes, performed, true));
                    }
                }
            }
        }
    }
}
