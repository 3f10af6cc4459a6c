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
    /// <summary>A published event (server to its subscribers): <c>fn</c> names it, part 0 is its payload; no reply.</summary>
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
    /// <summary>Ends the connection on purpose, with the reason in part 0 (either peer); no reply.</summary>
    Close,
    /// <summary>Asks for the events whose names match <c>fn</c> (a name or a glob); answered by a <see cref="Result"/> listing the matching events.</summary>
    Subscribe,
    /// <summary>Stops the events of an earlier <see cref="Subscribe"/> with the same <c>fn</c>; answered by a <see cref="Result"/>.</summary>
    Unsubscribe,
    /// <summary>Items of a streaming call's result, in order (part 0: an array of them); sent by the callee before the call's <see cref="Result"/>.</summary>
    Items,
    /// <summary>A progress report of a running call (part 0: the value); sent by the callee before the call's <see cref="Result"/>.</summary>
    Progress,
    /// <summary>Lets the callee of a streaming call send <c>credit</c> more items (sent by the caller as it consumes them).</summary>
    Credit,
    /// <summary>Reads a value a pointer points to from its holder (part 0: <c>path</c>, <c>secret_key</c> and optional rows <c>start</c>, <c>stop</c>); answered by a <see cref="Result"/> holding the value or its rows.</summary>
    Fetch,
    /// <summary>Drops a value a pointer points to from its holder (part 0: <c>path</c>, <c>secret_key</c>); answered by a <see cref="Result"/>.</summary>
    Release,
}
