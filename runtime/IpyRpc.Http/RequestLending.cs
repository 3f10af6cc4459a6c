using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Http;

/// <summary>How an HTTP endpoint hands a request's call to its session: lending the request's thread to the call's job.</summary>
internal static class RequestLending
{
    /// <summary>
    /// Hands the message to the session on this request's thread, lending the thread to the job it submits: when a
    /// worker of the in-memory queue is waiting, the job runs here, as that worker's, instead of on a thread-pool
    /// thread woken for it, and its reply is written from here. The thread has nothing else to do until the reply
    /// is written; the worker takes no further job on it (<see cref="ReplyHandoff.RunInlineOnce"/>). The job stays the
    /// worker's in every way: it is listed with that worker, counts against the queue's concurrency, and may wait.
    /// </summary>
    public static ValueTask HandleAsync(ServerSession session, IpyRpcMessage message)
    {
        // Only a thread-pool thread: a host that runs requests on its socket threads (Kestrel's UnsafePreferInlineScheduling) must not have them run jobs.
        if (!Thread.CurrentThread.IsThreadPoolThread) return session.HandleAsync(message);
        ValueTask handled = session.HandleHolding(message, out ReplyHandoff handoff);
        if (handoff.HasReplies) handoff.RunInlineOnce();
        return handled;
    }
}
