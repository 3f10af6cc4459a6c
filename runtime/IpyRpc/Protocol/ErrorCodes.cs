namespace IpyRpc.Protocol;

/// <summary>
/// The error codes an error message carries, each with the JSON-RPC 2.0 code it maps to.
/// They are strings on the wire so third-party clients can switch on them readably.
/// </summary>
public static class ErrorCodes
{
    /// <summary>The bytes were not a parsable message or document (JSON-RPC -32700).</summary>
    public const string ParseError = "parse_error";
    /// <summary>The message was parsable but breaks the protocol (JSON-RPC -32600).</summary>
    public const string BadMessage = "bad_message";
    /// <summary>No function has that name (JSON-RPC -32601).</summary>
    public const string UnknownFunction = "unknown_function";
    /// <summary>Arguments missing, extra, or of the wrong type (JSON-RPC -32602).</summary>
    public const string InvalidArguments = "invalid_arguments";
    /// <summary>The server failed for a reason that is not the function's (JSON-RPC -32603).</summary>
    public const string Internal = "internal";
    /// <summary>The function threw (JSON-RPC -32000).</summary>
    public const string RemoteException = "remote_exception";
    /// <summary>The call ran past its timeout (JSON-RPC -32001).</summary>
    public const string Timeout = "timeout";
    /// <summary>The call was cancelled (JSON-RPC -32002).</summary>
    public const string Cancelled = "cancelled";
    /// <summary>The message is larger than the peer accepts (JSON-RPC -32003).</summary>
    public const string TooLarge = "too_large";
    /// <summary>Credentials were missing or wrong (JSON-RPC -32004).</summary>
    public const string Unauthorized = "unauthorized";
    /// <summary>No protocol version in common (JSON-RPC -32005).</summary>
    public const string UnsupportedVersion = "unsupported_version";
    /// <summary>The function does not accept the serialization the call used (JSON-RPC -32006).</summary>
    public const string UnsupportedSerialization = "unsupported_serialization";

    /// <summary>The connection dropped while the call was in flight; it may or may not have run (JSON-RPC -32007).</summary>
    public const string ConnectionLost = "connection_lost";

    /// <summary>A job (or other stored thing) asked for by id is not known, or no longer kept; the message says which and why (JSON-RPC -32008).</summary>
    public const string NotFound = "not_found";

    /// <summary>The connection has as many calls (or argument bytes) in flight as the server allows one connection; wait for some to finish (JSON-RPC -32009).</summary>
    public const string TooManyRequests = "too_many_requests";

    /// <summary>A data pointer's value is gone: its time to live ran out (JSON-RPC -32010).</summary>
    public const string PointerExpired = "pointer_expired";

    /// <summary>A data pointer's value is gone: it was released (JSON-RPC -32011).</summary>
    public const string PointerReleased = "pointer_released";

    /// <summary>A data pointer's value is gone: its holder needed the room for newer values and evicted it (JSON-RPC -32012).</summary>
    public const string PointerEvicted = "pointer_evicted";

    /// <summary>A data pointer came with the wrong secret key: nothing is served or resolved (JSON-RPC -32013).</summary>
    public const string PointerDenied = "pointer_denied";

    /// <summary>A data pointer's holder could not be reached (its process is gone, or no transport of it is reachable from here) (JSON-RPC -32014).</summary>
    public const string HolderUnreachable = "holder_unreachable";

    /// <summary>Raised by a client generated from a schema file, never sent: the server's function no longer has the signature the schema recorded (JSON-RPC -32015).</summary>
    public const string SchemaMismatch = "schema_mismatch";

    /// <summary>
    /// The server cannot take the request now: the job queue's store is out of reach (Redis down or cut off; a SQLite file
    /// another process holds locked), or the server is shutting down with an in-memory queue. The call was not queued and
    /// did not run, unless the error names a <c>job</c> it may have been queued as (JSON-RPC -32016).
    /// </summary>
    public const string Unavailable = "unavailable";

    /// <summary>
    /// A stream's job was delivered again (its worker stopped answering) after this reader had received items of the
    /// earlier run: the new run makes its items from the start, which would repeat them. The reading ends rather than
    /// give items twice; a plain call's job is cancelled with it. A submitted job runs on: read its items again
    /// (JSON-RPC -32017).
    /// </summary>
    public const string DeliveredAgain = "delivered_again";

    /// <summary>The JSON-RPC 2.0 error code for an IpyRpc error code.</summary>
    public static int ToJsonRpc(string code) => code switch
    {
        ParseError => -32700,
        BadMessage => -32600,
        UnknownFunction => -32601,
        InvalidArguments => -32602,
        Internal => -32603,
        RemoteException => -32000,
        Timeout => -32001,
        Cancelled => -32002,
        TooLarge => -32003,
        Unauthorized => -32004,
        UnsupportedVersion => -32005,
        UnsupportedSerialization => -32006,
        ConnectionLost => -32007,
        NotFound => -32008,
        TooManyRequests => -32009,
        PointerExpired => -32010,
        PointerReleased => -32011,
        PointerEvicted => -32012,
        PointerDenied => -32013,
        HolderUnreachable => -32014,
        SchemaMismatch => -32015,
        Unavailable => -32016,
        DeliveredAgain => -32017,
        _ => -32603,
    };
}
