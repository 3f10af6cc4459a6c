namespace IpyRpc.Protocol;

/// <summary>What a message is. On the wire it is the lower-case name in the header's <c>kind</c> field.</summary>
public enum MessageKind
{
    /// <summary>Opens a connection: versions offered (client) or chosen (server).</summary>
    Hello,
    /// <summary>Asks for every function's descriptor; answered by a <see cref="Result"/>.</summary>
    Describe,
    /// <summary>Calls a function. Either peer may send one.</summary>
    Call,
    /// <summary>A call's return value.</summary>
    Result,
    /// <summary>A call's failure, or a reply to a message that could not be handled.</summary>
    Error,
    /// <summary>A piece of the callee's stdout or stderr, sent while the call runs.</summary>
    Output,
    /// <summary>Asks the callee to cancel a call.</summary>
    Cancel,
    /// <summary>An unsolicited notification; no reply. Reserved for events.</summary>
    Event,
    /// <summary>Liveness probe; answered by <see cref="Pong"/>.</summary>
    Ping,
    /// <summary>The answer to <see cref="Ping"/>.</summary>
    Pong,
    /// <summary>Queues a call as a job without waiting for it; answered at once by a <see cref="Result"/> holding the job's info.</summary>
    Submit,
    /// <summary>Follows a job by id: its recorded output is replayed, then the rest arrives live, then its outcome, as for a call.</summary>
    Attach,
    /// <summary>Asks for a job's info by id; answered by a <see cref="Result"/>.</summary>
    Status,
    /// <summary>Asks for the jobs the server's queues remember; answered by a <see cref="Result"/> holding an array of job infos.</summary>
    List,
    /// <summary>Proves the client knows the shared secret (after the hello's challenge); answered by a <see cref="Result"/> or an <c>unauthorized</c> error.</summary>
    Auth,
}
