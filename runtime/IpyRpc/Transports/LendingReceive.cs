using System.Runtime.CompilerServices;
using IpyRpc.Protocol;

namespace IpyRpc.Transports;

/// <summary>
/// Awaits a channel's next message for a receive loop, and lends the loop's thread to what a <see cref="ReplyHandoff"/>
/// held while the loop handled the last one (a caller's continuation, a job handed to a waiting worker): once the
/// loop's continuation is registered with the pending receive, the held continuations run on this thread, so the
/// next message resumes the loop on another thread while the lent one still runs. A small call in process then wakes
/// two thread-pool threads instead of four (the loop's, on each side), or none when it is alone and the lent thread
/// takes in what it sends itself (<see cref="DeferredWakes"/>); and nothing that runs here can keep the connection from
/// receiving. When the next message is already there (calls arriving together), or the thread is
/// not the thread pool's, nothing is lent: the held continuations are queued to the thread pool, as without a handoff.
/// </summary>
internal readonly struct LendingReceive : ICriticalNotifyCompletion
{
    private readonly ConfiguredValueTaskAwaitable<IpyRpcMessage?>.ConfiguredValueTaskAwaiter _next;
    private readonly ReplyHandoff? _lent;

    private LendingReceive(ValueTask<IpyRpcMessage?> next, ReplyHandoff? lent)
    {
        _next = next.ConfigureAwait(false).GetAwaiter();
        _lent = lent;
    }

    /// <summary>
    /// Starts receiving <paramref name="channel"/>'s next message; what <paramref name="held"/> holds runs on this
    /// thread once the loop awaits the message, if it has to wait, or is queued to the thread pool now.
    /// </summary>
    public static LendingReceive Next(IMessageChannel channel, ReplyHandoff? held, CancellationToken cancellationToken)
    {
        ValueTask<IpyRpcMessage?> next;
        try
        {
            next = channel.ReceiveAsync(cancellationToken);
        }
        catch
        {
            held?.RunQueued(); // the receive failed at once: what was held still runs
            throw;
        }

        if (held is null || !held.HasReplies) return new LendingReceive(next, null);
        if (next.IsCompleted || !Thread.CurrentThread.IsThreadPoolThread)
        {
            held.RunQueued();
            return new LendingReceive(next, null);
        }

        return new LendingReceive(next, held);
    }

    /// <summary>The awaiter: itself.</summary>
    public LendingReceive GetAwaiter() => this;

    /// <summary>Whether the message is there; never, while something is to be lent the thread (it runs once the loop's continuation is registered).</summary>
    public bool IsCompleted => _lent is null && _next.IsCompleted;

    /// <summary>The message, or <see langword="null"/> at the end of the connection; throws what the receive threw.</summary>
    public IpyRpcMessage? GetResult() => _next.GetResult();

    /// <summary>
    /// Runs what was held on this thread. An in-process request or reply it sends for a lone call wakes its reader on
    /// this thread once it returns (<see cref="DeferredWakes"/>).
    /// </summary>
    private void RunLent()
    {
        if (_lent is null) return;
        DeferredWakes wakes = DeferredWakes.Enter();
        try
        {
            _lent.RunInline();
        }
        finally
        {
            wakes.Exit();
        }
    }

    /// <inheritdoc/>
    public void OnCompleted(Action continuation)
    {
        _next.OnCompleted(continuation);
        RunLent();
    }

    /// <inheritdoc/>
    public void UnsafeOnCompleted(Action continuation)
    {
        _next.UnsafeOnCompleted(continuation);
        RunLent();
    }
}
