using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq.Native;

/// <summary>
/// Several IpyRpc messages in one ZeroMQ frame (docs/PROTOCOL.md, "ZeroMQ"): the byte <see cref="Marker"/>, then each
/// message in the stream block format. A peer announces that it reads them in its connection's handshake metadata
/// (<see cref="Property"/>), and only such a peer is sent them; a frame that begins with the marker cannot be a
/// header (0xC1 is never used in MessagePack), so a packed frame is told from a plain message by its first byte.
/// </summary>
internal static class PackedMessages
{
    /// <summary>The first byte of a packed frame.</summary>
    public const byte Marker = 0xC1;

    /// <summary>The handshake metadata property (ZMQ_METADATA) by which a peer says it reads packed frames: its value is <c>1</c>.</summary>
    public const string Property = "X-IpyRpc-Packed";

    /// <summary>The most bytes packed into one frame; a message that would not fit goes in the next, and a larger one on its own, unpacked.</summary>
    public const int Limit = 16 * 1024;

    /// <summary>Whether <paramref name="frame"/> is a packed frame.</summary>
    public static bool IsPacked(ReadOnlySpan<byte> frame) => !frame.IsEmpty && frame[0] == Marker;

    /// <summary>
    /// Decodes the next message of a packed frame's <paramref name="rest"/> (after the marker) and moves past it; false at
    /// the end. A malformed message throws <see cref="ProtocolException"/> (with its id when its header says it), and the
    /// messages after it are still read when its declared length lies within the frame, dropped otherwise.
    /// </summary>
    public static bool TryNext(ref ReadOnlyMemory<byte> rest, long maxMessageBytes, out IpyRpcMessage? message)
    {
        message = null;
        if (rest.IsEmpty) return false;
        ReadOnlyMemory<byte> here = rest;
        long declared = MessageCodec.DeclaredFrameLength(here.Span);
        if (declared < 0 || declared > here.Length)
        {
            rest = ReadOnlyMemory<byte>.Empty;
            throw new ProtocolException(ErrorCodes.BadMessage, $"A packed ZeroMQ message ends inside one of its messages ({here.Length} bytes left, {(declared < 0 ? "fewer than the 12 of a message's sizes" : $"{declared} declared")}).");
        }

        rest = here[(int)declared..];
        message = MessageCodec.DecodeFramed(here[..(int)declared], maxMessageBytes);
        return true;
    }
}
