using System.Collections.Concurrent;
using System.Threading.Tasks.Sources;
using IpyRpc.Transports;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// The calling half of one live link to a peer: numbers the requests this side sends, matches
/// the peer's replies to them by id, and hands a call's output, progress and stream items to
/// whoever waits on it. Clients hold one per connection to their server; a server session holds
/// one per connection to call its client back. Ids are per direction, so both halves of a
/// connection number their requests from 1 without colliding.
/// </summary>
internal sealed class PeerLink
{
    private readonly Func<IpyRpcMessage, CancellationToken, ValueTask> _send;
    private readonly ConcurrentDictionary<ulong, PendingRequest> _pending = new();
    private long _nextId;
    private Exception? _broken;
    private ulong _readUpTo = ulong.MaxValue; // what the peer said it read when the link closed; all, unless it said

    public PeerLink(Func<IpyRpcMessage, CancellationToken, ValueTask> send, string peerName)
    {
        _send = send;
        PeerName = peerName;
    }

    /// <summary>How errors name the other side: "the server", "the client".</summary>
    public string PeerName { get; }

    /// <summary>Why the link is closed, or <see langword="null"/> while it is up.</summary>
    public Exception? Broken => Volatile.Read(ref _broken);

    /// <summary>How many requests wait for replies.</summary>
    public int Pending => _pending.Count;

    /// <summary>A fresh request id (for messages that expect no tracked reply, such as heartbeat pings).</summary>
    public ulong NextId() => (ulong)Interlocked.Increment(ref _nextId);

    /// <summary>Sends a request and waits for its final reply; an error reply is thrown as the matching <see cref="IpyRpcException"/>.</summary>
    public async Task<IpyRpcMessage> RequestAsync(IpyRpcMessage message, string what, PendingRequest pending, CancellationToken cancellationToken, TimeSpan? timeout)
    {
        if (Broken is { } broken) throw Undelivered(broken);

        ulong id = NextId();
        pending.Id = id;
        _pending[id] = pending;
        IpyRpcMessage withId = message with { Id = id };

        using var deadline = timeout is { } t ? new CancellationTokenSource(t) : null;
        using CancellationTokenRegistration onCancel = cancellationToken.Register(static s => ((PendingRequest)s!).TrySetCanceled(), pending);
        using CancellationTokenRegistration onDeadline = deadline?.Token.Register(static s => ((PendingRequest)s!).TimedOut(), pending) ?? default;
        try
        {
            if (Broken is { } closed) throw Undelivered(closed);
            // Claimed for sending, unless the link's close got to it first (and failed it as never delivered).
            if (!pending.TryStartSending()) throw Undelivered(Broken ?? new IOException("The link closed."));
            try
            {
                await _send(withId, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // The link closed while it was being sent: the close left it to this, since the transport may have
                // answered it meanwhile (a refusal that says it was never delivered, which then stands).
                if (!pending.TrySent() && Broken is { } during) pending.TrySetException(id > _readUpTo ? Undelivered(during) : during);
            }

            IpyRpcMessage reply = await pending.Reply.ConfigureAwait(false);
            if (reply.Kind == MessageKind.Error)
            {
                RemoteError error = RemoteError.Decode(reply.Body.Span, reply.Serialization);
                if (reply.NotDelivered && error.Code == ErrorCodes.ConnectionLost)
                {
                    throw new IpyRpcConnectionException(error, message.Function ?? what) { NotDelivered = true };
                }

                throw IpyRpcException.FromRemote(error, message.Function ?? what);
            }

            return reply;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested || pending.IsTimedOut)
        {
            if (message.Kind is MessageKind.Call or MessageKind.Attach)
            {
                // Tell the peer, so the function's CancellationToken fires and the job stops (or, for an attach, it stops following).
                _ = SendQuietlyAsync(new IpyRpcMessage { Kind = MessageKind.Cancel, Id = id });
            }

            if (pending.IsTimedOut && !cancellationToken.IsCancellationRequested)
            {
                throw new IpyRpcTimeoutException(new RemoteError { Code = ErrorCodes.Timeout, Message = $"No reply within {timeout}." }, message.Function ?? what);
            }

            throw;
        }
        catch (Exception e) when (e is ObjectDisposedException or IOException)
        {
            throw new IpyRpcConnectionException($"The connection to {PeerName} is closed: {e.Message}", e);
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>The failure of a request that met the link already closed: it was never sent.</summary>
    private IpyRpcConnectionException Undelivered(Exception broken) => broken is IpyRpcConnectionException lost
        ? new IpyRpcConnectionException(lost.Error, null, lost.InnerException) { Reason = lost.Reason, NotDelivered = true }
        : new IpyRpcConnectionException(new RemoteError { Code = ErrorCodes.ConnectionLost, Message = $"The connection to {PeerName} is closed: {broken.Message}" }, null, broken) { NotDelivered = true };

    /// <summary>Sends a message that expects no reply; a closed link swallows it.</summary>
    public async Task SendQuietlyAsync(IpyRpcMessage message)
    {
        try
        {
            await _send(message, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IpyRpcConnectionException or ObjectDisposedException or IOException or OperationCanceledException or InvalidOperationException)
        {
        }
    }

    /// <summary>Sends a message that expects no reply.</summary>
    public ValueTask SendAsync(IpyRpcMessage message, CancellationToken cancellationToken = default) => _send(message, cancellationToken);

    /// <summary>
    /// Hands a reply (result, error, hello, pong) or a running call's message (output, progress,
    /// items) to the request it is about. False when no request of this link has that id.
    /// </summary>
    public bool Dispatch(IpyRpcMessage message)
    {
        if (!_pending.TryGetValue(message.Id, out PendingRequest? pending)) return false;
        switch (message.Kind)
        {
            case MessageKind.Output:
                Guard(pending, static (p, m) =>
                {
                    if (p.RawOutput is { } raw) raw(m);
                    else p.Output?.Invoke(m.Stream, System.Text.Encoding.UTF8.GetString(m.Body.Span));
                }, message);
                break;
            case MessageKind.Progress:
                Guard(pending, static (p, m) => p.Progress?.Invoke(m), message);
                break;
            case MessageKind.Items:
                Guard(pending, static (p, m) => p.Items?.Invoke(m), message);
                break;
            default:
                // On a receiving thread that lends itself (ReplyHandoff), the caller's continuation runs there, later. The
                // reply is claimed now, so a failure after it (the connection closing just after) cannot overtake it.
                if (pending.TryClaim() && !ReplyHandoff.TryDefer(pending, message)) pending.SetClaimed(message, inline: false);
                break;
        }

        return true;
    }

    private static void Guard(PendingRequest pending, Action<PendingRequest, IpyRpcMessage> handle, IpyRpcMessage message)
    {
        try
        {
            handle(pending, message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failing output or progress handler must not take the connection down.
        }
    }

    /// <summary>
    /// Closes the link: every request still waiting fails with <paramref name="reason"/>, and so does every later one;
    /// those with ids past <paramref name="readUpTo"/> (what the peer said it had read) fail as never delivered.
    /// </summary>
    public void Close(Exception reason, ulong? readUpTo = null)
    {
        if (readUpTo is { } read) _readUpTo = read;
        Interlocked.CompareExchange(ref _broken, reason, null);
        Exception broken = Volatile.Read(ref _broken)!;
        foreach (PendingRequest p in _pending.Values)
        {
            switch (p.Stop())
            {
                case SendState.NotSent:
                    p.TrySetException(Undelivered(broken)); // and now never to be
                    break;
                case SendState.Sent:
                    p.TrySetException(p.Id > readUpTo ? Undelivered(broken) : broken); // past what the peer read: never reached it
                    break;
                // Being sent: its sender settles it once the transport has it.
            }
        }
    }
}

/// <summary>
/// One request waiting for its reply, with where its output, progress and items go meanwhile. Awaited once,
/// through <see cref="Reply"/>; the first completion wins. The caller's continuation runs on the thread pool,
/// except when a receiving thread that lends itself completes it (<see cref="ReplyHandoff"/>): then it runs there.
/// </summary>
internal sealed class PendingRequest : IValueTaskSource<IpyRpcMessage>, IHeldCompletion
{
    private ManualResetValueTaskSourceCore<IpyRpcMessage> _core = new() { RunContinuationsAsynchronously = true };
    private int _completed;
    private int _timedOut;

    public PendingRequest(Action<OutputStream, string>? output = null, Action<IpyRpcMessage>? rawOutput = null)
    {
        Output = output;
        RawOutput = rawOutput;
    }

    /// <summary>The id the link gave the request.</summary>
    public ulong Id { get; set; }

    /// <summary>The final reply (or the failure), awaited once.</summary>
    public ValueTask<IpyRpcMessage> Reply => new(this, _core.Version);

    public Action<OutputStream, string>? Output { get; }

    public Action<IpyRpcMessage>? RawOutput { get; }

    /// <summary>Progress reports of the call, as they arrive (on the receiving thread: be quick).</summary>
    public Action<IpyRpcMessage>? Progress { get; init; }

    /// <summary>Stream items of the call, as they arrive (on the receiving thread: be quick).</summary>
    public Action<IpyRpcMessage>? Items { get; init; }

    public bool IsTimedOut => Volatile.Read(ref _timedOut) == 1;

    /// <summary>Claims the completion for a reply that <see cref="SetClaimed"/> will give; false when it is already completed or claimed.</summary>
    public bool TryClaim() => Interlocked.Exchange(ref _completed, 1) == 0;

    private int _sending; // a SendState

    /// <summary>Marks the request as being sent; false when the link's close got to it first (it never will be).</summary>
    public bool TryStartSending() => Interlocked.CompareExchange(ref _sending, (int)SendState.Sending, (int)SendState.NotSent) == (int)SendState.NotSent;

    /// <summary>Marks the request as handed to the transport; false when the link closed while it was being sent.</summary>
    public bool TrySent() => Interlocked.CompareExchange(ref _sending, (int)SendState.Sent, (int)SendState.Sending) == (int)SendState.Sending;

    /// <summary>For the link's close: where the request was (not sent: now it never will be; being sent: its sender is told).</summary>
    public SendState Stop()
    {
        int was = Interlocked.CompareExchange(ref _sending, (int)SendState.Closed, (int)SendState.NotSent);
        if (was == (int)SendState.Sending) was = Interlocked.CompareExchange(ref _sending, (int)SendState.ClosedWhileSending, (int)SendState.Sending);
        return (SendState)was;
    }

    /// <summary>Completes a claimed request with its reply; <paramref name="inline"/>: the caller's continuation runs on this thread, now, rather than on the thread pool.</summary>
    public void SetClaimed(IpyRpcMessage reply, bool inline)
    {
        _core.RunContinuationsAsynchronously = !inline;
        _core.SetResult(reply);
    }

    void IHeldCompletion.Complete(object? value, bool inline) => SetClaimed((IpyRpcMessage)value!, inline);

    public bool TrySetException(Exception error)
    {
        if (Interlocked.Exchange(ref _completed, 1) == 1) return false;
        _core.SetException(error);
        return true;
    }

    public bool TrySetCanceled() => TrySetException(new TaskCanceledException());

    public void TimedOut()
    {
        Volatile.Write(ref _timedOut, 1);
        TrySetCanceled();
    }

    IpyRpcMessage IValueTaskSource<IpyRpcMessage>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<IpyRpcMessage>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<IpyRpcMessage>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _core.OnCompleted(continuation, state, token, flags);
}

/// <summary>Where a request is in being sent, as its link's close finds it.</summary>
internal enum SendState
{
    /// <summary>Registered, not sent yet.</summary>
    NotSent,

    /// <summary>Being handed to the transport.</summary>
    Sending,

    /// <summary>Handed to the transport.</summary>
    Sent,

    /// <summary>The link closed before it was sent: it never will be.</summary>
    Closed,

    /// <summary>The link closed while it was being handed to the transport.</summary>
    ClosedWhileSending,
}
