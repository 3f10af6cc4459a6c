namespace IpyRpc.Protocol;

/// <summary>
/// A message that breaks the protocol: malformed or truncated header, unknown kind, too many
/// parts, a declared size over the limit. <see cref="Code"/> says which family it is.
/// </summary>
public sealed class ProtocolException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ProtocolException(string code, string message, ulong id = 0, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Id = id;
    }

    /// <summary>The error code a reply carries (<see cref="ErrorCodes.BadMessage"/>, <see cref="ErrorCodes.TooLarge"/>, …).</summary>
    public string Code { get; }

    /// <summary>The id of the message, when the header could be read that far; otherwise 0.</summary>
    public ulong Id { get; }
}
