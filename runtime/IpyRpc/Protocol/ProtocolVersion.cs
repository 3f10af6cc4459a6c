namespace IpyRpc.Protocol;

/// <summary>Protocol versions and limits.</summary>
public static class ProtocolVersion
{
    /// <summary>The version this implementation speaks.</summary>
    public const int Current = 1;

    /// <summary>Every version this implementation can speak, newest first.</summary>
    public static readonly IReadOnlyList<int> Supported = [1];

    /// <summary>The largest header accepted (64 KiB): headers are small; anything larger is hostile or broken.</summary>
    public const int MaxHeaderBytes = 64 * 1024;

    /// <summary>The most parts a message may have.</summary>
    public const int MaxParts = 64;

    /// <summary>The default largest message (header plus parts), 256 MiB; servers and clients can change it.</summary>
    public const long DefaultMaxMessageBytes = 256L * 1024 * 1024;
}
