using IpyRpc.Jobs;
using IpyRpc.Protocol;

namespace IpyRpc;

/// <summary>Options of an <see cref="IpyRpcServer"/>.</summary>
public sealed record IpyRpcServerOptions
{
    /// <summary>The queue calls run on. Default: an <see cref="InMemoryJobQueue"/>.</summary>
    public IJobQueue? Queue { get; init; }

    /// <summary>Further named queues that <see cref="FunctionOptions.Queue"/> can pick.</summary>
    public IReadOnlyList<IJobQueue> AdditionalQueues { get; init; } = [];

    /// <summary>
    /// How many calls this server runs at once on each queue (its own workers). 0 runs none: the
    /// jobs wait for <see cref="IpyRpcWorker"/>s in other processes, which needs durable queues.
    /// </summary>
    public int Concurrency { get; init; } = 64;

    /// <summary>How long a lease of this server's workers holds on a durable queue without renewal (see <see cref="JobWorkerOptions.LeaseDuration"/>).</summary>
    public TimeSpan LeaseDuration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Names this server's workers in job listings. Default: host, process id and a random suffix.</summary>
    public string? WorkerId { get; init; }

    /// <summary>On dispose, how long running calls may go on before they are cancelled. Default: none, they are cancelled at once.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.Zero;

    /// <summary>The largest message accepted, in bytes (header plus parts).</summary>
    public long MaxMessageBytes { get; init; } = ProtocolVersion.DefaultMaxMessageBytes;

    /// <summary>Whether console output of calls is captured and sent to callers.</summary>
    public bool CaptureOutput { get; init; } = true;

    /// <summary>The name sent in the hello.</summary>
    public string Agent { get; init; } = "ipyrpc-dotnet/" + ProtocolVersion.Current;
}
