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
}
