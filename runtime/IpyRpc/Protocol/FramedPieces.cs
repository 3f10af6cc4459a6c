namespace IpyRpc.Protocol;

/// <summary>
/// A message in the stream block format as the pieces written one after another (<see cref="MessageCodec.FramePieces"/>):
/// the prefix and header, then each part's 8-byte size and the part itself, which is the message's own memory, not a copy.
/// </summary>
public readonly struct FramedPieces
{
    private readonly byte[] _head;
    private readonly byte[] _sizes;
    private readonly IReadOnlyList<ReadOnlyMemory<byte>> _parts;

    internal FramedPieces(byte[] head, byte[] sizes, IReadOnlyList<ReadOnlyMemory<byte>> parts, long length)
    {
        _head = head;
        _sizes = sizes;
        _parts = parts;
        Length = length;
    }

    /// <summary>The whole message's length in bytes, prefix included.</summary>
    public long Length { get; }

    /// <summary>How many pieces there are: the head, then a size and a part for each part.</summary>
    public int Count => 1 + (2 * _parts.Count);

    /// <summary>Piece <paramref name="index"/>, in the order they are written.</summary>
    public ReadOnlyMemory<byte> this[int index] => index == 0
        ? _head
        : (index & 1) == 1 ? _sizes.AsMemory(8 * ((index - 1) / 2), 8) : _parts[(index - 2) / 2];
}
