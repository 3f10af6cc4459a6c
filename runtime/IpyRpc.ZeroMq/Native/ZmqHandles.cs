using System.Runtime.InteropServices;

namespace IpyRpc.ZeroMq.Native;

/// <summary>A libzmq context. Releasing it terminates the context, which joins libzmq's own threads.</summary>
internal sealed class ZmqContextHandle : SafeHandle
{
    public ZmqContextHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        LibZmq.zmq_ctx_term(handle);
        ZeroMqDiagnostics.Context(-1);
        return true;
    }
}

/// <summary>A libzmq socket. Releasing it closes the socket after <see cref="LingerMs"/> at most.</summary>
internal sealed class ZmqSocketHandle : SafeHandle
{
    public ZmqSocketHandle() : base(0, ownsHandle: true) { }

    public override bool IsInvalid => handle == 0;

    /// <summary>How long unsent messages may delay the close.</summary>
    public int LingerMs { get; set; }

    protected override unsafe bool ReleaseHandle()
    {
        int linger = LingerMs;
        LibZmq.zmq_setsockopt_raw(handle, LibZmq.LINGER, &linger, sizeof(int));
        LibZmq.zmq_close(handle);
        ZeroMqDiagnostics.Socket(-1);
        return true;
    }
}
