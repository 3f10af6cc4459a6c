using IpyRpc;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>An IpyRpc server on a real ZeroMQ ROUTER socket on loopback.</summary>
internal sealed class ZmqServer : IAsyncDisposable
{
    private ZmqServer(IpyRpcServer server, IpyRpcZeroMqServer host)
    {
        Server = server;
        Host = host;
    }

    public IpyRpcServer Server { get; }

    public IpyRpcZeroMqServer Host { get; }

    public string Endpoint => Host.Endpoint;

    public static ZmqServer Start(string endpoint = "tcp://127.0.0.1:*", ZeroMqOptions? options = null, IpyRpcServerOptions? serverOptions = null)
    {
        var server = new IpyRpcServer(serverOptions);
        server.Register(typeof(ZmqFunctions));
        return new ZmqServer(server, IpyRpcZeroMqServer.Start(server, endpoint, options));
    }

    public Task<IpyRpcClient> ConnectAsync(IpyRpcClientOptions? options = null, ZeroMqOptions? zmq = null)
        => IpyRpcZeroMqClient.ConnectAsync(Endpoint, options ?? new IpyRpcClientOptions { Output = (_, _) => { } }, zmq);

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        await Server.DisposeAsync();
    }
}
