using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.ZeroMq.Native;

/// <summary>
/// One ZeroMQ socket, used by one thread at a time (libzmq sockets are not thread-safe): whichever
/// thread holds the socket's lock drives it. A thread that <see cref="Send"/>s and finds the socket free
/// sends on its own thread, with no hand-off; one that finds it busy queues the message and wakes the I/O
/// thread (on Linux an <c>eventfd</c>, elsewhere a one-byte message over an inproc PAIR). The I/O thread
/// receives: it waits on file descriptors only (<c>ZMQ_FD</c> of the socket, and of the monitor and ZAP
/// handler when there are such, and the wake-up signal's), not inside any socket, so it holds nothing while
/// it waits and each wait is one <c>poll</c>. No thread blocks per call. Received multipart messages are
/// handed to a callback on the I/O thread, which must return quickly. A loop may lend its I/O thread (leader and
/// follower; see <see cref="ReplyHandoff"/>): a server's to the queue worker it handed a call to, a client's to the
/// caller whose reply it received. The leader runs that continuation itself and then goes back to the socket; a
/// second I/O thread takes over receiving only from a continuation that runs long (lazy leading).
/// </summary>
/// <remarks>
/// <c>ZMQ_FD</c> signals changes, not states: after any operation on the socket, by any thread, a message
/// may already be waiting that the descriptor will not announce. So whoever used the socket reads
/// <c>ZMQ_EVENTS</c> before letting go of it and wakes the I/O thread when there is something to do (unless a
/// wake-up is already signalled: the I/O thread then looks itself). Reading <c>ZMQ_EVENTS</c> costs two system
/// calls, so the I/O thread skips it where the last thing it did was a receive that found nothing (that receive has
/// already taken in every pending command), and with nothing to send it receives instead of asking first. Likewise a lending loop
/// whose messages have been coming one at a time takes one and runs its continuation before it asks for more (the
/// receive that finds nothing costs the same two calls, and it looks after the continuation anyway), and it never
/// waits before it has asked: libzmq announces a new message only to a reader that has found its queue empty. On
/// Linux it waits in <c>poll</c> itself, one system call, where <c>zmq_poll</c> makes two (it polls once without
/// waiting first).
/// </remarks>
internal sealed unsafe class SocketLoop : IDisposable
{
    private const int ZeroCopyThreshold = 32 * 1024;
    private readonly ZmqContextHandle _context;
    private readonly ZmqSocketHandle _socket;
    // The socket's raw pointer, for the calls made a message under _socketLock: the handle is closed only under that
    // lock, by the last leader once it has stopped servicing the socket, and other threads check _socketClosed under it
    // before they send, so it needs no reference count taken a call.
    private readonly nint _socketPtr;
    private readonly int _wakeFd = -1; // Linux: the wake-up signal, an eventfd
    private bool _wakeFdClosed; // under _wakeLock
    private readonly ZmqSocketHandle? _wakeReceiver; // elsewhere: an inproc pair
    private ZmqSocketHandle? _wakeSender;
    private readonly ZmqSocketHandle? _monitor;
    private readonly ZmqSocketHandle? _zap;
    private readonly Func<ZapRequest, ZapReply>? _authenticate;
    private readonly Func<byte[], bool>? _wantsPeer;
    private readonly object _wakeLock = new();
    private readonly object _socketLock = new(); // held by whichever thread is using _socket
    private readonly nint _socketFd; // the descriptor libzmq signals when the socket's state changes
    private Outgoing? _pending; // DEALER: a message the socket would not take yet (high-water mark); under _socketLock
    private bool _commandsTaken; // the last use of _socket took in all its pending commands (ZMQ_EVENTS, or a receive that found nothing); under _socketLock
    private bool _singles; // the last receive that drained the socket found one message: the next may stop after its first (lending), and senders send themselves; written under _socketLock, read by senders as a hint
    private bool _deferred; // the last receive stopped after one message without asking for more; under _socketLock
    private int _servicingThread; // the I/O thread while it services the socket; under _socketLock
    private bool _socketClosed; // under _socketLock
    private readonly ConcurrentQueue<Outgoing> _outbound = new();
    private readonly Action<List<ReadOnlyMemory<byte>>, PooledParts?, ProtocolException?, PeerInfo?> _receive;
    private readonly Action<int, int>? _onEvent;
    private readonly Action<Exception, string>? _failed; // where a handler's unexpected failure is reported (the server's log)
    private readonly bool _router;
    // ROUTER only: messages for peers whose queue in libzmq is full (high-water mark), in order, so one
    // slow peer never holds up the others. Touched under _socketLock only.
    private readonly Dictionary<string, Queue<Outgoing>> _parked = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _unparked = new(StringComparer.Ordinal);
    private readonly long _maxMessageBytes;
    private readonly int _maxFrames;
    private readonly int _lingerMs;
    // Lending the I/O thread (lendThread): the thread that received a reply, or handed a call to a waiting worker, runs
    // that continuation itself without handing receiving over first (leading lazily). The idle follower, a second I/O
    // thread that does not spin, waits on _leaderGate: it looks at the leader now and then and takes over only from a
    // continuation it finds still running at its next look (one that blocks or computes for long). Several messages
    // received together have their continuations run in turn the same way, as one batch. (Handing over before every
    // continuation, as the server's loop once did, woke the follower for every call only for the leader to take the
    // lead back, usually: 25-30 µs more CPU a call and slower calls.)
    // How often it looks: FollowerPeriodMs after a look that found a continuation running (so one that runs long is taken
    // over from a millisecond or two after it is first seen), and twice as long as the last time, up to
    // FollowerLongestPeriodMs, after a look that found none. Calls made one at a time run continuations of some
    // microseconds between waits of a hundred; looking every millisecond then woke this thread a thousand times a second
    // in each process for nothing, at tens of microseconds of CPU a wake-up on a virtual machine, and cost such a call
    // about a twentieth of its time on two cores (PERFORMANCE.md, "ZeroMQ: the follower looks less often").
    private readonly bool _lendThread;
    private readonly object _leaderGate = new();
    private int _idleFollowers; // under _leaderGate
    private const int FollowerPeriodMs = 1;
    private const int FollowerLongestPeriodMs = 16;
    private const int FollowerIdleMsBeforeSleep = 200; // that long without a continuation at all: wait to be woken instead
    private long _looks; // the follower's looks at the leader, for tests; under _leaderGate
    private bool _inContinuation; // the leader runs a continuation now; under _leaderGate
    private long _continuations; // how many the leader has begun; under _leaderGate
    private bool _deposed; // the follower took over from the continuation running now; under _leaderGate
    private bool _followerAsleep; // the follower waits to be woken (Monitor.Pulse), not on a timer; under _leaderGate
    private bool _handedLead; // the leader handed receiving to the (already counted out) follower; under _leaderGate
    private int _leaderThread; // the thread that leads (or last led); set under _socketLock
    private HeldBatch? _batch; // the batch of continuations the leader runs in turn, for a follower that takes over to queue the rest; under _leaderGate
    private long _handOvers; // receiving handed to a follower, or taken over by one; under _leaderGate
    private bool _closing; // the last leader has stopped: followers stop too; under _leaderGate
    private readonly ManualResetEventSlim _stopped = new(false); // set once the last leader has closed everything
    private nint[] _polled = [];
    private int _signalled;
    // Holding (see Send): the leader's thread while it runs a batch of continuations, whose messages it holds; 0 otherwise.
    private int _holdingThread;
    private int _held; // messages held since the last went out; touched by the holding thread only
    private const int HoldGroup = 8;
    private volatile bool _stopping;
    private bool _disposed;

    /// <param name="name">Names the I/O thread.</param>
    /// <param name="socketType">ROUTER or DEALER.</param>
    /// <param name="setup">Sets options and binds or connects the socket; runs on the calling thread so errors reach the caller.</param>
    /// <param name="receive">Gets each received message's frames (or the reason they were refused).</param>
    /// <param name="onEvent">Gets socket monitor events (the event, and its value: a file descriptor for accepted and disconnected), when given.</param>
    /// <param name="maxMessageBytes">The largest message (all frames together) accepted.</param>
    /// <param name="maxFrames">The most frames a message may have.</param>
    /// <param name="lingerMs">How long unsent messages may delay shutdown.</param>
    /// <param name="authenticate">A ZAP handler (CURVE clients' keys), bound in this socket's context before <paramref name="setup"/> runs.</param>
    /// <param name="wantsPeer">Given a message's first frame, whether to read its peer's address and user id (for a new peer).</param>
    /// <param name="failed">Hears of a handler's unexpected failure (the socket goes on), with what was being done.</param>
    /// <param name="wakeWithPair">Wake the I/O thread over an inproc pair even where an <c>eventfd</c> is available (as on systems without one; for tests).</param>
    /// <param name="lendThread">
    /// Run what received messages complete (a waiting caller's continuation, a waiting queue worker's) on the I/O thread
    /// that received them, rather than waking a thread-pool thread (see <see cref="ReplyHandoff"/>). A second I/O
    /// thread, which waits without spinning, takes over receiving from a continuation (or a batch of them, run in turn)
    /// still running when it next looks: a millisecond or two after a look that finds it running, and the looks come at
    /// most 16 ms apart.
    /// </param>
    public SocketLoop(string name, int socketType, Action<ZmqSocketHandle> setup, Action<List<ReadOnlyMemory<byte>>, PooledParts?, ProtocolException?, PeerInfo?> receive, Action<int, int>? onEvent, long maxMessageBytes, int maxFrames, int lingerMs,
        Func<ZapRequest, ZapReply>? authenticate = null, Func<byte[], bool>? wantsPeer = null, Action<Exception, string>? failed = null, bool wakeWithPair = false, bool lendThread = false)
    {
        _failed = failed;
        LibZmq.EnsureLoaded();
        _router = socketType == LibZmq.ROUTER;
        _receive = receive;
        _authenticate = authenticate;
        _wantsPeer = wantsPeer;
        _onEvent = onEvent;
        _maxMessageBytes = maxMessageBytes;
        _maxFrames = maxFrames;
        _lingerMs = lingerMs;
        _context = LibZmq.zmq_ctx_new();
        if (_context.IsInvalid) throw Failure("zmq_ctx_new");
        ZeroMqDiagnostics.Context(1);
        try
        {
            LibZmq.zmq_ctx_set(_context, LibZmq.BLOCKY, 0); // terminate after linger, never hang
            if (authenticate is not null)
            {
                // libzmq asks the handler bound here, in the same context, about every CURVE client.
                _zap = Open(LibZmq.REP);
                Check(LibZmq.zmq_bind(_zap, LibZmq.ZapEndpoint), "bind the ZAP handler");
            }

            _socket = Open(socketType);
            _socket.LingerMs = lingerMs;
            _socketPtr = _socket.DangerousGetHandle();
            setup(_socket);
            _socketFd = DescriptorOf(_socket);

            if (OperatingSystem.IsLinux() && !wakeWithPair) _wakeFd = LibC.eventfd(0, LibC.EFD_NONBLOCK | LibC.EFD_CLOEXEC);
            if (_wakeFd < 0)
            {
                string wake = $"inproc://ipyrpc-wake-{Guid.NewGuid():N}";
                _wakeReceiver = Open(LibZmq.PAIR);
                Check(LibZmq.zmq_bind(_wakeReceiver, wake), "bind wake-up pair");
                _wakeSender = Open(LibZmq.PAIR);
                Check(LibZmq.zmq_connect(_wakeSender, wake), "connect wake-up pair");
            }

            if (onEvent is not null)
            {
                string monitor = $"inproc://ipyrpc-monitor-{Guid.NewGuid():N}";
                Check(LibZmq.zmq_socket_monitor(_socket, monitor, LibZmq.EVENT_CONNECTED | LibZmq.EVENT_ACCEPTED | LibZmq.EVENT_DISCONNECTED | LibZmq.EVENT_HANDSHAKE_SUCCEEDED
                    | LibZmq.EVENT_HANDSHAKE_FAILED_AUTH | LibZmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | LibZmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL), "monitor socket");
                _monitor = Open(LibZmq.PAIR);
                Check(LibZmq.zmq_connect(_monitor, monitor), "connect monitor");
            }
        }
        catch
        {
            CloseAll();
            throw;
        }

        _lendThread = lendThread;
        for (int i = 0; i < (lendThread ? 2 : 1); i++)
        {
            var thread = new Thread(Run) { IsBackground = true, Name = name };
            ZeroMqDiagnostics.Thread(1);
            thread.Start(i == 0); // the first leads; a second waits to take over while the first is lent
        }
    }

    /// <summary>The socket's last bound or connected endpoint (with the real port after binding port <c>*</c>).</summary>
    public string LastEndpoint { get; private set; } = "";

    /// <summary>Reads ZMQ_LAST_ENDPOINT; call from the setup callback after binding.</summary>
    public static string ReadLastEndpoint(ZmqSocketHandle socket)
    {
        byte* buffer = stackalloc byte[512];
        nuint length = 512;
        Check(LibZmq.zmq_getsockopt(socket, LibZmq.LAST_ENDPOINT, buffer, &length), "read the bound endpoint");
        return Marshal.PtrToStringUTF8((nint)buffer) ?? "";
    }

    /// <summary>Sets an int socket option.</summary>
    public static void SetInt(ZmqSocketHandle socket, int option, int value) => Check(LibZmq.zmq_setsockopt(socket, option, &value, sizeof(int)), $"set option {option}");

    /// <summary>Sets an int64 socket option.</summary>
    public static void SetLong(ZmqSocketHandle socket, int option, long value) => Check(LibZmq.zmq_setsockopt(socket, option, &value, sizeof(long)), $"set option {option}");

    /// <summary>
    /// Sends a multipart message: on the calling thread when the socket is free and messages lately arrive one at a
    /// time, otherwise by the I/O thread, woken for it (once for all the messages queued meanwhile). Safe from any
    /// thread; messages sent by one thread keep their order.
    /// </summary>
    /// <param name="frames">The message's frames.</param>
    /// <param name="pooled">Pooled arrays the frames are slices of: released once libzmq is done with the message (sent, or lost with its peer), never while it may still read them.</param>
    public void Send(ReadOnlyMemory<byte>[] frames, PooledParts? pooled = null)
    {
        if (_stopping) throw Closed();
        _outbound.Enqueue(new Outgoing(frames, pooled));
        int self = Environment.CurrentManagedThreadId;
        if (self == Volatile.Read(ref _holdingThread))
        {
            // The leader runs a batch of continuations: their messages go out together, HoldGroup at a time and the rest
            // when the batch ends, so libzmq's I/O thread is woken once for several (each wake-up of it costs a handful of
            // system calls). A follower that takes over from a continuation of the batch stops the holding first and then
            // sends what was held; the barrier orders this message's enqueueing before the look at _holdingThread, so a
            // message either is sent by that follower or is not held.
            Interlocked.MemoryBarrier();
            if (++_held < HoldGroup && self == Volatile.Read(ref _holdingThread)) return;
            _held = 0;
        }

        if (!Volatile.Read(ref _singles) && self != Volatile.Read(ref _leaderThread))
        {
            // Messages lately arrive in batches (many calls in flight): the callers' threads leave their messages to the
            // I/O thread, woken once for all of them, which sends them together. Each sending its own would take the
            // socket's lock, wake libzmq's I/O thread for its one message, and look at the socket's commands after it.
            // A lone call's message (one at a time lately) goes out from its own thread, with no hop added.
            Wake();
            return;
        }

        if (!Monitor.TryEnter(_socketLock))
        {
            Wake(); // the socket is busy (usually the I/O thread receiving): it sends this before it waits again
            return;
        }

        try
        {
            if (_socketClosed) throw Closed();
            FlushLocked(); // what was queued before this message goes first
            // The I/O thread itself (a reply made while it handles a message, or a lent leader's continuation: it
            // services the socket before it waits, and a follower that took over meanwhile finds the commands not
            // taken) looks again before it waits.
            if (self != _servicingThread && !(_lendThread && self == _leaderThread)) WakeIfNeededLocked();
        }
        finally
        {
            Monitor.Exit(_socketLock);
        }
    }

    private static ObjectDisposedException Closed() => new(nameof(SocketLoop), "The ZeroMQ socket is closed.");

    /// <summary>Sends what is queued, in order, until the socket pushes back. Under <see cref="_socketLock"/>.</summary>
    private void FlushLocked()
    {
        while (_pending is not null || _outbound.TryDequeue(out _pending))
        {
            if (_router)
            {
                SendOrPark(_pending); // a slow peer's message waits in that peer's own queue; the others go on
                _pending = null;
                continue;
            }

            if (!SendFrames(_pending))
            {
                return; // would block: kept until the socket takes sends again
            }

            _pending = null;
        }
    }

    private int Events()
    {
        while (true)
        {
            int events = 0;
            nuint size = sizeof(int);
            if (LibZmq.zmq_getsockopt_raw(_socketPtr, LibZmq.EVENTS, &events, &size) == 0)
            {
                _commandsTaken = true;
                return events;
            }

            // Interrupted by a signal (the runtime uses them to suspend threads for the GC): ask again, or a
            // waiting message would be taken for none, and the descriptor would never announce it.
            if (LibZmq.zmq_errno() != LibZmq.EINTR) return 0; // the socket is closing
        }
    }

    /// <summary>Whether the socket needs no servicing before a wait: its commands taken in by its last use, and nothing queued to send, retry or forget.</summary>
    private bool QuietLocked() => _commandsTaken && _pending is null && _parked.Count == 0 && _outbound.IsEmpty && _forget.IsEmpty;

    /// <summary>
    /// After using the socket from a thread other than the I/O thread: the descriptor will not announce a
    /// message already waiting, so the I/O thread is woken. So it is while a message waits for room (a
    /// DEALER's, or a ROUTER's parked peers): reading <c>ZMQ_EVENTS</c> here may have taken in the news that the
    /// peer reads again, and only the I/O thread retries them, on a timer it sets when it sees them.
    /// </summary>
    private void WakeIfNeededLocked()
    {
        // A wake-up already signalled and not yet taken in: the I/O thread's next wait returns at once and it services
        // the socket (its commands taken in first) before it waits again, after this thread lets go. Asking here would
        // cost two system calls for nothing.
        if (Volatile.Read(ref _signalled) == 1) return;
        if ((Events() & LibZmq.POLLIN) != 0 || _pending is not null || _parked.Count > 0) Wake();
    }

    /// <summary>
    /// The I/O thread's turn with the socket: forget gone peers, retry parked ones, send what is queued and
    /// receive what is waiting, until <c>ZMQ_EVENTS</c> shows nothing left to do, so the descriptor signals
    /// the next change. Returns whether something waits to be retried on a timer (a full queue). Lending
    /// (<paramref name="handoff"/>), it may stop after a single message that left a continuation held, without asking
    /// the socket for more (<paramref name="deferred"/>): the caller runs the continuation and services the socket again
    /// before it waits.
    /// </summary>
    private bool ServiceLocked(ReplyHandoff? handoff, out bool deferred)
    {
        deferred = false;
        while (_forget.TryDequeue(out string? gone))
        {
            if (_parked.Remove(gone)) Unpark(gone);
        }

        _commandsTaken = false; // woken: the descriptor may have announced something
        while (true)
        {
            if (_parked.Count > 0) RetryParked();
            FlushLocked();
            // After a receive that found nothing, and no send since, there is nothing new to learn from ZMQ_EVENTS. With
            // nothing waiting to be sent, a receive asks the socket directly: one that finds nothing takes in the pending
            // commands as ZMQ_EVENTS would, so a batch costs one such look instead of two. (After a receive stopped at one
            // message, ZMQ_EVENTS still says whether a backlog waits.)
            int events = _commandsTaken && _pending is null ? 0 : _pending is null && !_deferred ? LibZmq.POLLIN : Events();
            // More waiting right after a receive stopped at one message: a backlog, drained whole this time.
            bool backlog = _deferred && (events & LibZmq.POLLIN) != 0;
            _deferred = false;
            if ((events & LibZmq.POLLIN) != 0)
            {
                // A batch at most, then sends queued meanwhile go out, so replies are not starved.
                if (ReceiveAvailable(stopAfterOne: handoff is not null && _singles && !backlog) && handoff is { HasReplies: true })
                {
                    _deferred = deferred = true;
                    return _parked.Count > 0 || _pending is not null;
                }

                continue;
            }

            if (_pending is not null && (events & LibZmq.POLLOUT) != 0 && SendFrames(_pending))
            {
                _pending = null;
                continue;
            }

            return _parked.Count > 0 || _pending is not null;
        }
    }

    /// <summary>
    /// ROUTER: completes when messages to the peer <paramref name="peerKey"/> (its routing id, base64)
    /// flow again, if libzmq's queue for it is full now; <see langword="null"/> when it is not.
    /// </summary>
    public Task? WhenPeerAccepts(string peerKey) => _unparked.TryGetValue(peerKey, out TaskCompletionSource? signal) ? signal.Task : null;

    /// <summary>ROUTER: forgets the messages parked for a peer that is gone.</summary>
    public void ForgetPeer(string peerKey)
    {
        _forget.Enqueue(peerKey);
        Wake();
    }

    private readonly ConcurrentQueue<string> _forget = new();

    private void Wake()
    {
        // One signal at a time: the I/O thread clears the flag before draining the queue, so a
        // message queued after that point signals again and none is left waiting.
        if (Interlocked.Exchange(ref _signalled, 1) == 0)
        {
            if (_wakeFd >= 0)
            {
                ulong one = 1;
                lock (_wakeLock)
                {
                    while (!_wakeFdClosed && LibC.write(_wakeFd, &one, sizeof(ulong)) < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
                    {
                    }
                }

                return;
            }

            byte b = 1;
            lock (_wakeLock)
            {
                // Retried when a signal interrupts it: with the flag set, a lost byte would never be sent again.
                while (_wakeSender is { IsClosed: false } && LibZmq.zmq_send(_wakeSender, &b, 1, LibZmq.DONTWAIT) < 0 && LibZmq.zmq_errno() == LibZmq.EINTR)
                {
                }
            }
        }
    }

    private void Run(object? first)
    {
        bool leading = first is true;
        bool stopped = false;
        try
        {
            if (leading)
            {
                // Waited on, all as file descriptors (a ZeroMQ socket's own is ZMQ_FD; polling the sockets themselves would
                // cost two system calls each, before and after every wait): the socket (other threads may use it meanwhile),
                // the wake-up signal, then the monitor and the ZAP handler where there are such. A ZeroMQ socket's
                // descriptor announces changes, not states, so each is drained until it has nothing left whenever it is
                // announced, and once now. The loop owns these handles and closes them only after it stops waiting.
                var polled = new List<nint> { _socketFd, _wakeFd >= 0 ? _wakeFd : DescriptorOf(_wakeReceiver!) };
                if (_monitor is not null) polled.Add(DescriptorOf(_monitor));
                if (_zap is not null) polled.Add(DescriptorOf(_zap));
                Volatile.Write(ref _polled, [.. polled]);
                if (_monitor is not null) ReceiveMonitorEvents();
                if (_zap is not null) AnswerZap();
            }

            while (true)
            {
                bool handedOver = !leading;
                if (handedOver && !WaitToLead()) return; // stopping while this thread followed (or was lent)
                leading = false;
                if (Lead(handedOver))
                {
                    stopped = true;
                    return;
                }

                // Handed over: this thread ran a caller's continuation, and now follows until it leads again.
            }
        }
        finally
        {
            if (stopped)
            {
                // The last leader: followers stop, then the sockets and context close.
                lock (_leaderGate)
                {
                    _closing = true;
                    _idleFollowers = 0;
                    Monitor.PulseAll(_leaderGate);
                }

                CloseAll();
                _stopped.Set();
            }

            ZeroMqDiagnostics.Thread(-1);
        }
    }

    /// <summary>
    /// A follower waits to take over receiving: it looks at the leader now and then (see <see cref="FollowerPeriodMs"/>)
    /// and takes over from a continuation it finds still running at its next look, or when handed the lead; after a while
    /// with no continuations at all it waits to be woken by the next one instead. False when the last leader has
    /// stopped. A follower handed the lead leads even when stopping has begun: it is then the one that closes everything.
    /// </summary>
    private bool WaitToLead()
    {
        bool lead = WaitToLead(out HeldBatch? rest);
        rest?.QueueRest(); // outside the gate: queuing a continuation may post it to its caller's synchronization context
        return lead;
    }

    private bool WaitToLead(out HeldBatch? rest)
    {
        rest = null;
        lock (_leaderGate)
        {
            if (_closing) return false;
            _idleFollowers++;
            long running = -1, seen = _continuations;
            int idleMs = 0, period = FollowerPeriodMs;
            while (true)
            {
                if (_closing) return false; // the closer has counted this follower out
                if (_handedLead)
                {
                    _handedLead = false; // the leader counted this follower out as it handed over
                    return true;
                }

                if (_inContinuation && _continuations == running)
                {
                    // The same continuation as at the last look: it blocks or computes, and replies must not wait for it,
                    // nor the continuations of its batch not yet begun (it may be waiting for one of them): the pool runs those.
                    _deposed = true;
                    Volatile.Write(ref _holdingThread, 0); // what the batch held goes out with this thread's first service
                    rest = _batch;
                    _batch = null;
                    _idleFollowers--;
                    _handOvers++;
                    return true;
                }

                running = _inContinuation ? _continuations : -1;
                idleMs = _continuations == seen ? idleMs + period : 0;
                seen = _continuations;
                if (running < 0 && idleMs >= FollowerIdleMsBeforeSleep)
                {
                    _followerAsleep = true;
                    Monitor.Wait(_leaderGate);
                    _followerAsleep = false;
                    idleMs = 0;
                    period = FollowerPeriodMs;
                }
                else
                {
                    // One running now: look again soon, to take over if it still is. None: look later each time.
                    period = running >= 0 ? FollowerPeriodMs : Math.Min(period * 2, FollowerLongestPeriodMs);
                    Monitor.Wait(_leaderGate, period);
                }

                _looks++;
            }
        }
    }

    /// <summary>
    /// How often receiving has moved to another I/O thread (handed over, or taken over from a continuation), and how
    /// many times the leader has run continuations itself without handing over first (a single one, or a batch in turn).
    /// For tests.
    /// </summary>
    internal (long HandOvers, long RunInPlace) LeadCounts
    {
        get
        {
            lock (_leaderGate) return (_handOvers, _continuations);
        }
    }

    /// <summary>How many times an idle follower has looked at the leader (woken by its timer or a pulse). For tests.</summary>
    internal long FollowerLooks
    {
        get
        {
            lock (_leaderGate) return _looks;
        }
    }

    /// <summary>
    /// The leader is about to run a continuation (or a <paramref name="batch"/> of them) itself: only while a follower
    /// is there to take over from it.
    /// </summary>
    private bool TryBeginContinuation(HeldBatch? batch)
    {
        lock (_leaderGate)
        {
            if (_idleFollowers == 0 || _stopping) return false;
            _inContinuation = true;
            _batch = batch;
            _continuations++;
            if (_followerAsleep)
            {
                _followerAsleep = false;
                Monitor.Pulse(_leaderGate); // the follower looks on its timer again while continuations run
            }

            return true;
        }
    }

    /// <summary>The continuation has returned: true when this thread still leads, false when the follower took over.</summary>
    private bool EndContinuation()
    {
        lock (_leaderGate)
        {
            _inContinuation = false;
            _batch = null;
            if (!_deposed) return true;
            _deposed = false;
            return false;
        }
    }

    /// <summary>The leader hands receiving to an idle follower, if there is one.</summary>
    private bool TryHandOver()
    {
        lock (_leaderGate)
        {
            if (_idleFollowers == 0 || _stopping) return false;
            _idleFollowers--;
            _handOvers++;
            _handedLead = true;
            Monitor.Pulse(_leaderGate);
            return true;
        }
    }

    /// <summary>
    /// Drives the socket until the loop stops (true) or, lending this thread, it has handed receiving over (or had it
    /// taken over) and run a continuation (false). A thread <paramref name="handedOver"/> the lead starts by waiting, not by
    /// servicing, when the socket is quiet: the last use of it took in its commands and nothing is queued, so its
    /// descriptor announces the next change (and whoever used it since looked at <c>ZMQ_EVENTS</c> and woke this
    /// thread if it had to). That saves a call the two system calls of reading <c>ZMQ_EVENTS</c>.
    /// </summary>
    private bool Lead(bool handedOver)
    {
        bool windows = OperatingSystem.IsWindows(), linux = OperatingSystem.IsLinux(); // Linux: poll(2) itself, one system call a wait
        nint[] polled = Volatile.Read(ref _polled);
        int count = polled.Length, monitorAt = _monitor is null ? -1 : 2, zapAt = _zap is null ? -1 : count - 1;
        ZmqPollItem* items = stackalloc ZmqPollItem[count];
        ZmqPollItemWindows* itemsWindows = stackalloc ZmqPollItemWindows[count];
        PollFd* fds = stackalloc PollFd[count];
        for (int i = 0; i < count; i++)
        {
            items[i] = new ZmqPollItem { Fd = (int)polled[i], Events = LibZmq.POLLIN };
            itemsWindows[i] = new ZmqPollItemWindows { Fd = polled[i], Events = LibZmq.POLLIN };
            fds[i] = new PollFd { Fd = (int)polled[i], Events = LibZmq.POLLIN }; // POLLIN is 1 in both
        }

        bool quietStart = handedOver;
        while (!_stopping)
        {
            // Lending: replies completed while the socket is serviced are held, and their callers' continuations run
            // after it, on this thread, in turn (the follower takes over receiving if one runs long, and queues those of
            // the batch not yet begun to the thread pool); all on the thread pool when no follower is idle.
            ReplyHandoff? handoff = _lendThread ? ReplyHandoff.Begin() : null;
            bool retrySoon = false, deferred = false;
            lock (_socketLock)
            {
                _servicingThread = Environment.CurrentManagedThreadId;
                _leaderThread = _servicingThread;
                try
                {
                    if (!quietStart || !QuietLocked()) retrySoon = ServiceLocked(handoff, out deferred);
                    quietStart = false;
                }
                finally
                {
                    _servicingThread = 0;
                    handoff?.End();
                }
            }

            if (handoff is { HeldReplies: > 1 })
            {
                // Several replies at once (many calls in flight): this thread runs their continuations in turn, as it
                // would a single one, instead of waking pool threads for them (the continuations mostly send their
                // callers' next requests, which this thread, leading, sends at once). A follower that finds the batch
                // still running takes over receiving and queues the continuations not yet begun to the thread pool.
                HeldBatch batch = handoff.TakeBatch();
                if (TryBeginContinuation(batch))
                {
                    _held = 0;
                    Volatile.Write(ref _holdingThread, Environment.CurrentManagedThreadId);
                    try
                    {
                        batch.RunInline();
                    }
                    finally
                    {
                        Volatile.Write(ref _holdingThread, 0);
                    }

                    // Still leading, this thread sends what it held when it services the socket next, at once. Taken over
                    // from, it held nothing since (the follower stopped the holding, then sent what was held); a wake-up
                    // covers whatever its continuations queued meanwhile.
                    if (!EndContinuation())
                    {
                        if (!_outbound.IsEmpty) Wake();
                        return false;
                    }

                    continue;
                }

                batch.QueueRest(); // no follower to take over (it is receiving, or the loop stops)
            }
            else if (handoff is { HasReplies: true })
            {
                if (TryBeginContinuation(null))
                {
                    // No hand-over: this thread runs the continuation and leads on (it services the socket first, as
                    // the continuation has usually sent the caller's next request), unless the follower took over.
                    handoff.RunInline();
                    if (!EndContinuation()) return false;
                    continue;
                }

                if (TryHandOver())
                {
                    handoff.RunInline();
                    return false;
                }

                handoff.RunQueued();
            }

            if (deferred) continue; // the socket was not asked whether more waits: it is, before any wait

            int timeout = retrySoon ? 2 : -1; // parked peers and a message the socket would not take are retried every 2 ms
            for (int i = 0; i < count; i++)
            {
                // Only the set this system waits with is read back.
                if (linux) fds[i].ReturnedEvents = 0;
                else if (windows) itemsWindows[i].ReturnedEvents = 0;
                else items[i].ReturnedEvents = 0;
            }

            int rc = linux ? LibC.poll(fds, (nuint)count, timeout) : windows ? LibZmq.zmq_poll(itemsWindows, count, timeout) : LibZmq.zmq_poll(items, count, timeout);
            if (rc < 0)
            {
                int errno = linux ? Marshal.GetLastPInvokeError() : LibZmq.zmq_errno();
                if (errno == (linux ? LibC.EINTR : LibZmq.EINTR)) continue;
                break; // ETERM or a closed socket: shutting down
            }

            short Returned(int i) => linux ? fds[i].ReturnedEvents : windows ? itemsWindows[i].ReturnedEvents : items[i].ReturnedEvents;

            if ((Returned(1) & LibZmq.POLLIN) != 0)
            {
                ClearWake();
                Volatile.Write(ref _signalled, 0);
            }

            // ROUTER: monitor events first, so a peer's disconnect is seen before messages of whoever
            // comes next on its file descriptor (the socket is serviced at the top of the loop). DEALER (one
            // peer): what that peer sent before it went away (a goodbye, a last reply) is already queued;
            // deliver it before the disconnect.
            if (monitorAt >= 0 && (Returned(monitorAt) & LibZmq.POLLIN) != 0)
            {
                if (!_router)
                {
                    lock (_socketLock) ReceiveAvailable();
                }

                ReceiveMonitorEvents();
            }

            if (zapAt >= 0 && (Returned(zapAt) & LibZmq.POLLIN) != 0)
            {
                AnswerZap();
            }
        }

        return true;
    }

    /// <summary>The socket's ZMQ_FD: a SOCKET on Windows, an int elsewhere.</summary>
    internal static nint DescriptorOf(ZmqSocketHandle socket)
    {
        nint fd = 0;
        nuint size = OperatingSystem.IsWindows() ? (nuint)sizeof(nint) : sizeof(int);
        Check(LibZmq.zmq_getsockopt(socket, LibZmq.FD, &fd, &size), "read a socket's file descriptor");
        return OperatingSystem.IsWindows() ? fd : (int)fd;
    }

    /// <summary>Takes in the wake-up signal, so the next <see cref="Wake"/> announces itself again.</summary>
    private void ClearWake()
    {
        if (_wakeFd >= 0)
        {
            ulong value;
            while (LibC.read(_wakeFd, &value, sizeof(ulong)) < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
            {
            }

            return;
        }

        // Until it finds nothing: that takes in the pair's pending commands, so its descriptor announces the next byte.
        byte b;
        while (LibZmq.zmq_recv(_wakeReceiver!, &b, 1, LibZmq.DONTWAIT) >= 0 || LibZmq.zmq_errno() == LibZmq.EINTR)
        {
        }
    }

    /// <summary>ROUTER: sends the message, or queues it behind earlier ones for the same peer that are parked, or parks it when libzmq's queue for the peer is full.</summary>
    private void SendOrPark(Outgoing frames)
    {
        if (_parked.Count > 0)
        {
            string key = Convert.ToBase64String(frames.Frames[0].Span);
            if (_parked.TryGetValue(key, out Queue<Outgoing>? waiting))
            {
                waiting.Enqueue(frames);
                return;
            }
        }

        if (SendFrames(frames)) return;
        string peer = Convert.ToBase64String(frames.Frames[0].Span);
        var queue = new Queue<Outgoing>();
        queue.Enqueue(frames);
        _parked[peer] = queue;
        _unparked.TryAdd(peer, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
    }

    private void RetryParked()
    {
        List<string>? drained = null;
        foreach ((string peer, Queue<Outgoing> waiting) in _parked)
        {
            while (waiting.TryPeek(out Outgoing? next) && SendFrames(next)) waiting.Dequeue();
            if (waiting.Count == 0) (drained ??= []).Add(peer);
        }

        if (drained is null) return;
        foreach (string peer in drained)
        {
            _parked.Remove(peer);
            Unpark(peer);
        }
    }

    private void Unpark(string peer)
    {
        if (_unparked.TryRemove(peer, out TaskCompletionSource? signal)) signal.TrySetResult();
    }

    /// <summary>Sends one message; false when the socket would not take it (it is kept to try again), true once it is sent or lost.</summary>
    private bool SendFrames(Outgoing outgoing)
    {
        if (!SendFrames(outgoing.Frames, outgoing.Pooled)) return false;
        outgoing.Pooled?.Release(); // libzmq holds its own reference to any frame it has not finished with
        return true;
    }

    private bool SendFrames(ReadOnlyMemory<byte>[] frames, PooledParts? pooled)
    {
        _commandsTaken = false; // a send may take in commands (a peer's message arriving) without receiving
        for (int i = 0; i < frames.Length; i++)
        {
            int flags = (i < frames.Length - 1 ? LibZmq.SNDMORE : 0) | (i == 0 ? LibZmq.DONTWAIT : 0);
            ZmqMessage message;
            InitMessage(&message, frames[i], pooled);
            int rc, errno = 0;
            do
            {
                // A signal (the runtime suspends threads for the GC with one) interrupts a send that did nothing: send it again.
                rc = LibZmq.zmq_msg_send_raw(&message, _socketPtr, flags);
            }
            while (rc < 0 && (errno = LibZmq.zmq_errno()) == LibZmq.EINTR);

            if (rc < 0)
            {
                LibZmq.zmq_msg_close(&message);
                if (i == 0 && errno == LibZmq.EAGAIN) return false;
                // EHOSTUNREACH: a ROUTER peer that is gone. Anything else: the message is lost, as
                // it would be on a dead connection; callers' timeouts and heartbeats report it.
                return true;
            }
        }

        return true;
    }

    private static void InitMessage(ZmqMessage* message, ReadOnlyMemory<byte> frame, PooledParts? pooled)
    {
        if (frame.Length >= ZeroCopyThreshold && MemoryMarshal.TryGetArray(frame, out ArraySegment<byte> segment))
        {
            // Large frames go without a copy: pin the array (and hold its pool) until libzmq says it is done with it.
            var pinned = new PinnedFrame(GCHandle.Alloc(segment.Array!, GCHandleType.Pinned), pooled is not null && pooled.TryAcquire() ? pooled : null);
            GCHandle hint = GCHandle.Alloc(pinned);
            byte* data = (byte*)pinned.Pin.AddrOfPinnedObject() + segment.Offset;
            if (LibZmq.zmq_msg_init_data(message, data, (nuint)segment.Count, &FreePinned, (void*)GCHandle.ToIntPtr(hint)) == 0)
            {
                return;
            }

            hint.Free();
            pinned.Free();
        }

        Check(LibZmq.zmq_msg_init_size(message, (nuint)frame.Length), "allocate a message");
        frame.Span.CopyTo(new Span<byte>(LibZmq.zmq_msg_data(message), frame.Length));
    }

    // Called by libzmq (on whichever thread drops the message last) when it no longer reads the frame.
    [UnmanagedCallersOnly]
    private static void FreePinned(void* data, void* hint)
    {
        GCHandle handle = GCHandle.FromIntPtr((nint)hint);
        var pinned = (PinnedFrame)handle.Target!;
        handle.Free();
        pinned.Free();
    }

    private sealed class PinnedFrame(GCHandle pin, PooledParts? pooled)
    {
        public GCHandle Pin { get; } = pin;

        public void Free()
        {
            Pin.Free();
            pooled?.Release();
        }
    }

    /// <summary>A message waiting to be sent, with the pooled arrays its frames are slices of.</summary>
    private sealed class Outgoing(ReadOnlyMemory<byte>[] frames, PooledParts? pooled)
    {
        public ReadOnlyMemory<byte>[] Frames { get; } = frames;

        public PooledParts? Pooled { get; } = pooled;
    }

    /// <summary>
    /// Receives and hands on what the socket holds, up to a batch; with <paramref name="stopAfterOne"/>, only the first
    /// message, and then it returns true: the socket was not asked for more, so its commands were not taken in.
    /// </summary>
    private bool ReceiveAvailable(bool stopAfterOne = false)
    {
        // Drain what is ready now, but yield to sends after a batch so replies are not starved.
        _commandsTaken = false;
        for (int n = 0; n < 256; n++)
        {
            if (n == 1 && stopAfterOne)
            {
                // One message at a time lately (a caller waiting for each reply): asking for a second would cost a
                // system call that finds nothing (libzmq takes in its commands then), before the first is even
                // handled. The caller asks after it has run the message's continuation, when it looks anyway.
                return true;
            }

            ZmqMessage message;
            LibZmq.zmq_msg_init(&message);
            if (LibZmq.zmq_msg_recv_raw(&message, _socketPtr, LibZmq.DONTWAIT) < 0)
            {
                // Finding nothing (EAGAIN) took in the socket's pending commands; interrupted, it may not have.
                _commandsTaken = LibZmq.zmq_errno() == LibZmq.EAGAIN;
                LibZmq.zmq_msg_close(&message);
                if (_commandsTaken && n > 0) _singles = n == 1; // a look that found nothing says nothing of the pattern
                return false;
            }

            var frames = new List<ReadOnlyMemory<byte>>(4);
            PooledParts? pooled = null;
            long total = 0;
            ProtocolException? problem = null;
            PeerInfo? peer = null;
            bool first = true, readPeer = false;
            while (true)
            {
                int size = (int)LibZmq.zmq_msg_size(&message);
                total += size;
                if (problem is null && total > _maxMessageBytes)
                {
                    problem = new ProtocolException(ErrorCodes.TooLarge, $"The message is larger than the limit of {_maxMessageBytes} bytes.");
                }
                else if (problem is null && frames.Count >= _maxFrames)
                {
                    problem = new ProtocolException(ErrorCodes.BadMessage, $"A message may have at most {_maxFrames} frames.");
                }

                // Keep the first frames (the ROUTER identity and the header) so a refusal can be answered.
                if (problem is null || frames.Count < 2)
                {
                    // A large frame (the arguments or result) goes into a pooled array, which its last reader gives back.
                    byte[] bytes = PooledParts.ShouldPool(size) && frames.Count > 0 ? (pooled ??= new PooledParts()).Rent(size) : GC.AllocateUninitializedArray<byte>(size);
                    new ReadOnlySpan<byte>(LibZmq.zmq_msg_data(&message), size).CopyTo(bytes);
                    frames.Add(bytes.AsMemory(0, size));
                    if (readPeer)
                    {
                        // Metadata rides on the frames that came over the wire, not on the routing id the ROUTER made up.
                        int fd = LibZmq.zmq_msg_get(&message, LibZmq.SRCFD);
                        peer = new PeerInfo(Property(&message, "Peer-Address"), Property(&message, "User-Id"), fd >= 0 ? fd : null);
                        readPeer = false;
                    }
                    else if (first && _wantsPeer?.Invoke(bytes) == true)
                    {
                        readPeer = true;
                    }
                }

                first = false;

                bool more = LibZmq.zmq_msg_more(&message) != 0;
                LibZmq.zmq_msg_close(&message);
                if (!more) break;
                LibZmq.zmq_msg_init(&message);
                if (ReceiveMore(&message, _socketPtr) < 0)
                {
                    LibZmq.zmq_msg_close(&message);
                    break;
                }
            }

            // A new peer: first hear of disconnects already reported, so a reused descriptor is not mistaken for the old peer.
            if (peer is not null && _monitor is not null) ReceiveMonitorEvents();
            try
            {
                _receive(frames, pooled, problem, peer);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A handler failure must not stop the socket; it is reported.
                _failed?.Invoke(e, "handling a received message");
            }
        }

        _singles = false; // a full batch: more wait, most likely
        return false;
    }

    /// <summary>
    /// Receives the next frame of a message already begun (libzmq delivers messages whole, so it is there),
    /// again when a signal interrupts the call: giving up would cut the message and misread the rest as another.
    /// </summary>
    private static int ReceiveMore(ZmqMessage* message, nint socket)
    {
        int rc;
        while ((rc = LibZmq.zmq_msg_recv_raw(message, socket, 0)) < 0 && LibZmq.zmq_errno() == LibZmq.EINTR)
        {
        }

        return rc;
    }

    private static string? Property(ZmqMessage* message, string name)
    {
        nint value = LibZmq.zmq_msg_gets(message, name);
        return value == 0 ? null : Marshal.PtrToStringUTF8(value) is { Length: > 0 } text ? text : null;
    }

    /// <summary>Answers libzmq's ZAP request about one CURVE client (RFC 27): allowed, with the user id it becomes, or refused.</summary>
    private void AnswerZap()
    {
        while (true)
        {
            var frames = new List<byte[]>(7);
            ZmqMessage message;
            LibZmq.zmq_msg_init(&message);
            if (LibZmq.zmq_msg_recv(&message, _zap!, LibZmq.DONTWAIT) < 0)
            {
                LibZmq.zmq_msg_close(&message);
                return;
            }

            while (true)
            {
                frames.Add(new ReadOnlySpan<byte>(LibZmq.zmq_msg_data(&message), (int)LibZmq.zmq_msg_size(&message)).ToArray());
                bool more = LibZmq.zmq_msg_more(&message) != 0;
                LibZmq.zmq_msg_close(&message);
                if (!more) break;
                LibZmq.zmq_msg_init(&message);
                ReceiveMore(&message, _zap!.DangerousGetHandle()); // the leader's own, closed by the last leader after it stops
            }

            // version, request id, domain, address, routing id, mechanism, credentials...
            ZapReply reply;
            try
            {
                reply = frames.Count >= 6
                    ? _authenticate!(new ZapRequest(System.Text.Encoding.ASCII.GetString(frames[3]), System.Text.Encoding.ASCII.GetString(frames[5]), frames.Count > 6 ? frames[6] : []))
                    : new ZapReply(false, "malformed ZAP request", "");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _failed?.Invoke(e, "authenticating a client (ZAP)");
                reply = new ZapReply(false, "the authenticator failed: " + e.Message, "");
            }

            byte[][] answer =
            [
                "1.0"u8.ToArray(), frames.Count > 1 ? frames[1] : [], System.Text.Encoding.ASCII.GetBytes(reply.Allowed ? "200" : "400"),
                System.Text.Encoding.UTF8.GetBytes(reply.Text), System.Text.Encoding.UTF8.GetBytes(reply.UserId), [],
            ];
            for (int i = 0; i < answer.Length; i++)
            {
                fixed (byte* data = answer[i])
                {
                    LibZmq.zmq_send(_zap!, data, (nuint)answer[i].Length, i < answer.Length - 1 ? LibZmq.SNDMORE : 0);
                }
            }
        }
    }

    private void ReceiveMonitorEvents()
    {
        while (true)
        {
            ZmqMessage message;
            LibZmq.zmq_msg_init(&message);
            if (LibZmq.zmq_msg_recv(&message, _monitor!, LibZmq.DONTWAIT) < 0)
            {
                LibZmq.zmq_msg_close(&message);
                return;
            }

            // Frame 1: u16 event, u32 value. Frame 2: the endpoint.
            int evt = LibZmq.zmq_msg_size(&message) >= 2 ? *(ushort*)LibZmq.zmq_msg_data(&message) : 0;
            int value = LibZmq.zmq_msg_size(&message) >= 6 ? System.Runtime.CompilerServices.Unsafe.ReadUnaligned<int>((byte*)LibZmq.zmq_msg_data(&message) + 2) : -1;
            bool more = LibZmq.zmq_msg_more(&message) != 0;
            LibZmq.zmq_msg_close(&message);
            while (more)
            {
                LibZmq.zmq_msg_init(&message);
                ReceiveMore(&message, _monitor!.DangerousGetHandle()); // the leader's own, closed by the last leader after it stops
                more = LibZmq.zmq_msg_more(&message) != 0;
                LibZmq.zmq_msg_close(&message);
            }

            try
            {
                _onEvent?.Invoke(evt, value);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _failed?.Invoke(e, $"handling socket event {evt}");
            }
        }
    }

    private ZmqSocketHandle Open(int type)
    {
        ZmqSocketHandle socket = LibZmq.zmq_socket(_context, type);
        if (socket.IsInvalid) throw Failure("zmq_socket");
        ZeroMqDiagnostics.Socket(1);
        return socket;
    }

    private void CloseAll()
    {
        // Sockets first: terminating a context waits for all of its sockets to close.
        lock (_wakeLock)
        {
            _wakeSender?.Dispose();
            if (_wakeFd >= 0 && !_wakeFdClosed)
            {
                _wakeFdClosed = true;
                LibC.close(_wakeFd);
            }
        }

        _wakeReceiver?.Dispose();
        _monitor?.Dispose();
        _zap?.Dispose();
        lock (_socketLock)
        {
            _socketClosed = true;
            _socket?.Dispose();
        }

        _context.Dispose();
    }

    /// <summary>Stops the I/O thread, gives unsent messages up to the linger time, closes the sockets and terminates the context.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        // Let queued replies go out first, within the linger budget.
        var deadline = DateTime.UtcNow.AddMilliseconds(_lingerMs);
        while ((!_outbound.IsEmpty || Volatile.Read(ref _pending) is not null) && DateTime.UtcNow < deadline) Thread.Sleep(5);
        _stopping = true;
        Volatile.Write(ref _signalled, 0);
        Wake();
        if (!_stopped.Wait(TimeSpan.FromSeconds(10)))
        {
            // The I/O thread is stuck in libzmq; shutting the context down unblocks it.
            if (!_context.IsClosed) LibZmq.zmq_ctx_shutdown(_context);
            _stopped.Wait(TimeSpan.FromSeconds(5));
        }
    }

    private static void Check(int rc, string what)
    {
        if (rc < 0) throw Failure(what);
    }

    private static IOException Failure(string what)
    {
        int errno = LibZmq.zmq_errno();
        return new IOException($"ZeroMQ could not {what}: {LibZmq.Error(errno)} (errno {errno}).");
    }
}

/// <summary>What libzmq tells of a message's peer: its address, after CURVE with ZAP the user id the handler gave it, and the connection's file descriptor.</summary>
internal sealed record PeerInfo(string? Address, string? UserId, int? Fd = null);

/// <summary>A ZAP request about one client: where from, which mechanism, its credentials (for CURVE, its 32-byte public key).</summary>
internal sealed record ZapRequest(string Address, string Mechanism, byte[] Credentials);

/// <summary>A ZAP answer: allowed or not, why, and the user id the client's messages will carry.</summary>
internal sealed record ZapReply(bool Allowed, string Text, string UserId);
