using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>
/// A call failed. <see cref="Code"/> is one of <see cref="ErrorCodes"/>; the subclasses let a
/// caller catch the families they care about. The remote error as it arrived is in <see cref="Error"/>.
/// </summary>
public class IpyRpcException : Exception
{
    /// <summary>Creates the exception from a remote error.</summary>
    public IpyRpcException(RemoteError error, string? function = null, Exception? inner = null)
        : base(function is null ? error.Message : $"{function}: {error.Message}", inner)
    {
        Error = error;
        Function = function;
    }

    /// <summary>The error code.</summary>
    public string Code => Error.Code;

    /// <summary>The error as it came over the wire.</summary>
    public RemoteError Error { get; }

    /// <summary>The function called, when the error is about a call.</summary>
    public string? Function { get; }

    /// <summary>Turns a remote error into the most specific exception type for its code.</summary>
    public static IpyRpcException FromRemote(RemoteError error, string? function) => error.Code switch
    {
        ErrorCodes.RemoteException => new RemoteException(error, function),
        ErrorCodes.UnknownFunction => new UnknownFunctionException(error, function),
        ErrorCodes.InvalidArguments => new InvalidArgumentsException(error, function),
        ErrorCodes.Timeout => new IpyRpcTimeoutException(error, function),
        ErrorCodes.Cancelled => new IpyRpcCancelledException(error, function),
        ErrorCodes.Unauthorized => new IpyRpcUnauthorizedException(error, function),
        ErrorCodes.ConnectionLost => new IpyRpcConnectionException(error, function),
        ErrorCodes.NotFound => new IpyRpcNotFoundException(error, function),
        ErrorCodes.TooManyRequests => new IpyRpcTooManyRequestsException(error, function),
        ErrorCodes.Unavailable => new IpyRpcUnavailableException(error, function),
        ErrorCodes.PointerExpired or ErrorCodes.PointerReleased or ErrorCodes.PointerEvicted or ErrorCodes.PointerDenied or ErrorCodes.HolderUnreachable
            => new IpyRpcPointerException(error, function),
        ErrorCodes.SchemaMismatch => new SchemaMismatchException(error, function),
        ErrorCodes.BadMessage or ErrorCodes.ParseError or ErrorCodes.TooLarge or ErrorCodes.UnsupportedVersion or ErrorCodes.UnsupportedSerialization
            => new IpyRpcProtocolException(error, function),
        _ => new IpyRpcException(error, function),
    };
}

/// <summary>
/// A client generated from a schema file (docs/SCHEMA.md) refused a call before sending it: the server no
/// longer has the function, or its signature changed since the schema was written. Write the schema again
/// (<c>ipyrpc schema URL</c>) and rebuild. Code <see cref="ErrorCodes.SchemaMismatch"/>.
/// </summary>
public sealed class SchemaMismatchException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>
/// A data pointer could not be used: its value expired, was released or evicted, the key was wrong,
/// or its holder could not be reached. <see cref="IpyRpcException.Code"/> says which.
/// </summary>
public sealed class IpyRpcPointerException(RemoteError error, string? function = null, Exception? inner = null) : IpyRpcException(error, function, inner);

/// <summary>
/// The remote function threw. <see cref="RemoteType"/> names the remote exception's type,
/// <see cref="RemoteStackTrace"/> holds its stack, and <see cref="Exception.InnerException"/> is
/// the remote inner exception, again as a <see cref="RemoteException"/>.
/// </summary>
public sealed class RemoteException : IpyRpcException
{
    /// <summary>Creates the exception (and its inner chain) from a remote error.</summary>
    public RemoteException(RemoteError error, string? function = null)
        : base(error, function, error.Inner is null ? null : new RemoteException(error.Inner))
    {
    }

    /// <summary>The full name of the remote exception's type, for example <c>System.InvalidOperationException</c>.</summary>
    public string RemoteType => Error.Type ?? "System.Exception";

    /// <summary>The remote stack trace.</summary>
    public string? RemoteStackTrace => Error.StackTrace;

    /// <summary>The remote exception's own message, without the function name.</summary>
    public string RemoteMessage => Error.Message;

    /// <summary>The public properties the remote exception's type adds (a status code, the offending value), as plain data; empty when it adds none.</summary>
    public IReadOnlyDictionary<string, object?> RemoteProperties => Error.Data ?? new Dictionary<string, object?>();

    /// <inheritdoc/>
    public override string ToString()
    {
        var text = new System.Text.StringBuilder();
        text.Append(RemoteType).Append(": ").Append(Message);
        if (InnerException is not null)
        {
            text.Append(" ---> ").Append(InnerException.ToString()).AppendLine().Append("   --- End of remote inner exception ---");
        }

        if (RemoteStackTrace is not null)
        {
            text.AppendLine().Append("   --- Remote stack trace ---").AppendLine().Append(RemoteStackTrace);
        }

        return text.ToString();
    }
}

/// <summary>No function has the name called.</summary>
public sealed class UnknownFunctionException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>Arguments were missing, extra, or of the wrong type. <see cref="Parameter"/> names the culprit when there is one.</summary>
public sealed class InvalidArgumentsException(RemoteError error, string? function = null) : IpyRpcException(error, function)
{
    /// <summary>The parameter the error is about.</summary>
    public string? Parameter => Error.Parameter;
}

/// <summary>The call ran past its timeout (the server's configured one or the caller's).</summary>
public sealed class IpyRpcTimeoutException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>The server cancelled the call (for example it was shutting down, or another client cancelled the job).</summary>
public sealed class IpyRpcCancelledException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>Something asked for by id (a job) is not known, or no longer kept; the message says which and why.</summary>
public sealed class IpyRpcNotFoundException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>
/// The connection already has as many calls running as the server allows one connection and as many more waiting to start
/// (or as many argument bytes in both); retry once some have finished.
/// </summary>
public sealed class IpyRpcTooManyRequestsException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>
/// The server could not take the request now: its job queue's store is out of reach (Redis down or cut off, a SQLite file
/// another process holds locked), or the server is shutting down and its queue goes with it. The call was not queued and
/// did not run, so it can be made again once the store (or the server) is back;
/// unless <see cref="JobId"/> is set, when it may have been queued under that id before the store went out of reach: look
/// the job up (<see cref="IpyRpcPeer.GetJobAsync"/>) before calling again.
/// </summary>
public sealed class IpyRpcUnavailableException(RemoteError error, string? function = null) : IpyRpcException(error, function)
{
    /// <summary>The id of the job the call may have been queued as; <see langword="null"/> when it certainly was not queued.</summary>
    public string? JobId => Error.Job;
}

/// <summary>Credentials were missing or wrong.</summary>
public sealed class IpyRpcUnauthorizedException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>A peer broke the protocol, or a message was too large, or no version or serialization was in common.</summary>
public sealed class IpyRpcProtocolException(RemoteError error, string? function = null) : IpyRpcException(error, function);

/// <summary>
/// The connection to the server was lost or closed, or could not be made. A call that was in flight may or may not
/// have run; one that certainly never reached the server says so in <see cref="NotDelivered"/>.
/// </summary>
public sealed class IpyRpcConnectionException : IpyRpcException
{
    /// <summary>Creates the exception.</summary>
    public IpyRpcConnectionException(string message, Exception? inner = null)
        : base(new RemoteError { Code = ErrorCodes.ConnectionLost, Message = message }, null, inner)
    {
    }

    /// <summary>Creates the exception from an error a transport reported for a call.</summary>
    public IpyRpcConnectionException(RemoteError error, string? function, Exception? inner = null)
        : base(error, function, inner)
    {
    }

    /// <summary>Why the connection ended, when it is known.</summary>
    public DisconnectReason? Reason { get; init; }

    /// <summary>
    /// The request certainly never reached the server's functions: it was not sent (the connection was already down),
    /// the server could not be dialled, or the server refused it unread (it no longer held the connection). It did not
    /// run, so making it again cannot run it twice. A client that reconnects makes such calls again by itself, within
    /// <see cref="ReconnectOptions.WaitForReconnect"/>; this is what it throws when that ran out.
    /// </summary>
    public bool NotDelivered { get; init; }
}
