using IpyRpc.Formatting;

namespace IpyRpc.MessagePack;

/// <summary>
/// MessagePack input that is malformed, truncated, of the wrong type for what was asked, or out of
/// range. The message says what was expected, what was found and at which byte offset.
/// </summary>
public sealed class MessagePackSerializationException : IpyRpcSerializationException
{
    /// <summary>Creates the exception.</summary>
    public MessagePackSerializationException(string message, long offset)
        : base($"{message} (at byte {offset})") => Offset = offset;

    /// <summary>The byte offset in the input where the problem was found.</summary>
    public long Offset { get; }
}
