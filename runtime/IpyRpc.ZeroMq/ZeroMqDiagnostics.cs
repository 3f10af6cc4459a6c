namespace IpyRpc.ZeroMq;

/// <summary>
/// Live counts of the native resources and threads this transport holds, so tests (and
/// operators) can see that disposing a client or server released all of them.
/// </summary>
public static class ZeroMqDiagnostics
{
    private static int _contexts;
    private static int _sockets;
    private static int _threads;

    /// <summary>libzmq contexts not yet terminated.</summary>
    public static int LiveContexts => Volatile.Read(ref _contexts);

    /// <summary>libzmq sockets not yet closed.</summary>
    public static int LiveSockets => Volatile.Read(ref _sockets);

    /// <summary>I/O threads of this transport still running.</summary>
    public static int LiveThreads => Volatile.Read(ref _threads);

    internal static void Context(int delta) => Interlocked.Add(ref _contexts, delta);

    internal static void Socket(int delta) => Interlocked.Add(ref _sockets, delta);

    internal static void Thread(int delta) => Interlocked.Add(ref _threads, delta);
}
