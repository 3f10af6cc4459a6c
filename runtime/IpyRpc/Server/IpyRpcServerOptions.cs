using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>Options of an <see cref="IpyRpcServer"/>.</summary>
public sealed record IpyRpcServerOptions
{
    /// <summary>The queue calls run on. Default: an <see cref="InMemoryJobQueue"/> with <see cref="Concurrency"/> workers.</summary>
    public IJobQueue? Queue { get; init; }

    /// <summary>Further named queues that <see cref="FunctionOptions.Queue"/> can pick.</summary>
    public IReadOnlyList<IJobQueue> AdditionalQueues { get; init; } = [];

    /// <summary>How many calls run at once on the default queue.</summary>
    public int Concurrency { get; init; } = 64;

    /// <summary>The largest message accepted, in bytes (header plus parts).</summary>
    public long MaxMessageBytes { get; init; } = ProtocolVersion.DefaultMaxMessageBytes;

    /// <summary>Whether console output of calls is captured and sent to callers.</summary>
    public bool CaptureOutput { get; init; } = true;

    /// <summary>The name sent in the hello.</summary>
    public string Agent { get; init; } = "ipyrpc-dotnet/" + ProtocolVersion.Current;
}
