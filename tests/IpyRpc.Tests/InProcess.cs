using IpyRpc;

namespace IpyRpc.Tests;

/// <summary>A server with the test functions and an in-process client, both disposed together.</summary>
internal sealed class InProcess : IAsyncDisposable
{
    private InProcess(IpyRpcServer server, IpyRpcClient client)
    {
        Server = server;
        Client = client;
    }

    public IpyRpcServer Server { get; }

    public IpyRpcClient Client { get; }

    public List<(OutputStream Stream, string Text)> Output { get; } = [];

    public static async Task<InProcess> StartAsync(Serialization serialization = Serialization.MessagePack, Action<IpyRpcServer>? configure = null, IpyRpcServerOptions? options = null)
    {
        var server = new IpyRpcServer(options);
        server.Register(typeof(ShapeFunctions)).Register(typeof(BehaviourFunctions)).Register(new Counter());
        configure?.Invoke(server);
        InProcess? self = null;
        IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions
        {
            Serialization = serialization,
            Output = (stream, text) =>
            {
                lock (self!.Output) self.Output.Add((stream, text));
            },
        });
        self = new InProcess(server, client);
        return self;
    }

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await Server.DisposeAsync();
    }
}
