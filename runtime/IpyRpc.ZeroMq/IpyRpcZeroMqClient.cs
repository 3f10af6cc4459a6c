namespace IpyRpc.ZeroMq;

/// <summary>Connects IpyRpc clients over ZeroMQ.</summary>
public static class IpyRpcZeroMqClient
{
    /// <summary>
    /// Lets this process fetch pointers from holders that serve over ZeroMQ (<c>zmq</c>). It runs by
    /// itself when this assembly loads; call it when a process uses IpyRpc.ZeroMq for nothing else.
    /// </summary>
    public static void RegisterPointerConnector()
        => PointerConnectors.Register("zmq", (endpoint, options, cancellationToken) => ConnectAsync($"tcp://{endpoint.Host}:{endpoint.Port}", options, null, cancellationToken));

#pragma warning disable CA2255 // registering the transport with the core when the assembly loads is the point
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void OnLoad() => RegisterPointerConnector();
#pragma warning restore CA2255

    /// <summary>
    /// Connects to the server at <paramref name="endpoint"/> (<c>tcp://host:port</c> or <c>ipc:///path</c>), says hello and
    /// fetches the function list. After the connection is lost the client connects again by itself
    /// (<see cref="IpyRpcClientOptions.Reconnect"/>) on a fresh socket.
    /// </summary>
    /// <remarks>
    /// The client receives on an I/O thread of its own (named <c>IpyRpc.ZeroMq client</c> and the endpoint) and keeps a
    /// second one idle. When a reply arrives, the receiving thread runs the awaiting caller's continuation itself,
    /// instead of waking a thread-pool thread for it (see <see cref="Transports.ReplyHandoff"/>), and receives again
    /// when it returns; several replies that arrived together have their continuations run in turn. The second thread
    /// takes over receiving from a continuation it finds still running when it next looks (a millisecond or two after
    /// a look that finds it running; its looks come at most 16 ms apart), and queues to the thread pool the
    /// continuations of that batch not yet begun. So code after an
    /// <c>await</c> of a call may run on that thread; blocking or computing there is safe (the connection goes on
    /// receiving once the second thread has taken over, up to about 17 ms later after a quiet spell, the other callers
    /// of its batch go on from the thread pool, and a reply that finds no thread to take over from the receiving one
    /// goes to the thread pool as usual).
    /// </remarks>
    /// <exception cref="ZeroMqNotFoundException">libzmq is not installed.</exception>
    public static Task<IpyRpcClient> ConnectAsync(string endpoint, IpyRpcClientOptions? options = null, ZeroMqOptions? zeroMq = null, CancellationToken cancellationToken = default)
    {
        options ??= new IpyRpcClientOptions();
        ZeroMqOptions socket = (zeroMq ?? new ZeroMqOptions()) with { MaxMessageBytes = options.MaxMessageBytes };
        return IpyRpcClient.ConnectAsync(_ => new ValueTask<Transports.IMessageChannel>(new ZeroMqMessageChannel(endpoint, socket)), options, null, cancellationToken);
    }
}
