namespace IpyRpc;

/// <summary>How the parts of a message (arguments, results, errors) are encoded.</summary>
public enum Serialization
{
    /// <summary>Whatever the caller used (for input), or the same as the input (for output).</summary>
    Auto = 0,
    /// <summary>MessagePack, with large numeric arrays as raw little-endian blocks: the compact binary default.</summary>
    MessagePack = 1,
    /// <summary>UTF-8 JSON, with the shapes documented in docs/PROTOCOL.md.</summary>
    Json = 2,
}
