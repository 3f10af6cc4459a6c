namespace IpyRpc.MessagePack;

/// <summary>The family of a MessagePack value, as its first byte tells.</summary>
public enum MessagePackType
{
    /// <summary>The byte does not start any value (0xc1, never used by the format).</summary>
    Unknown = 0,
    /// <summary><c>nil</c>.</summary>
    Nil,
    /// <summary><c>true</c> or <c>false</c>.</summary>
    Boolean,
    /// <summary>A signed or unsigned integer of any width.</summary>
    Integer,
    /// <summary>A float32 or float64.</summary>
    Float,
    /// <summary>A UTF-8 string.</summary>
    String,
    /// <summary>A byte array.</summary>
    Binary,
    /// <summary>An array.</summary>
    Array,
    /// <summary>A map.</summary>
    Map,
    /// <summary>An extension value (including the timestamp extension, type -1).</summary>
    Extension,
}
