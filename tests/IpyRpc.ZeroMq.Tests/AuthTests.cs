using IpyRpc.Protocol;

namespace IpyRpc.ZeroMq.Tests;

/// <summary>Who the caller is, over ZeroMQ.</summary>
public static class ZmqWho
{
    /// <summary>The caller's principal and transport.</summary>
    [IpyRpcExport("who")]
    public static string Who(IpyRpcConnection connection) => $"{connection.Principal.Identity?.Name ?? "anonymous"} over {connection.Transport} from {(connection.IsLoopback ? "loopback" : connection.RemoteAddress)}";
}

public sealed class AuthTests
{
    private static IpyRpcServer Server(IpyRpcServerOptions? options = null)
    {
        var server = new IpyRpcServer(options);
        server.Register(typeof(ZmqWho));
        return server;
    }

    [Fact]
    public async Task TheSharedSecretWorksOverZeroMqAndAWrongOneFailsAtConnect()
    {
        await using IpyRpcServer server = Server(new IpyRpcServerOptions { SharedSecret = "over zeromq" });
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        await using (IpyRpcClient client = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { SharedSecret = "over zeromq", ClientName = "dave" }))
        {
            Assert.Equal("dave over zeromq from loopback", await client.CallAsync<string>("who"));
        }

        var e = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { SharedSecret = "over http" }).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("shared secret", e.Message);
    }

    [Fact]
    public async Task APeerThatDoesNotProveTheSecretInTimeIsToldWhyAndLetGoWhileOneThatDidStays()
    {
        await using IpyRpcServer server = Server(new IpyRpcServerOptions { SharedSecret = "over zeromq", AuthenticationTimeout = TimeSpan.FromSeconds(1) });
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        await using IpyRpcClient proven = await IpyRpcZeroMqClient.ConnectAsync(host.Endpoint, new IpyRpcClientOptions { SharedSecret = "over zeromq", ClientName = "erin" });

        // A peer written from PROTOCOL.md says hello and nothing more: it hears the close, and why.
        (int code, string stdout, string stderr) = await IpyRpc.Tests.PythonPeer.RunAsync("unproven.py", host.Endpoint);
        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("hello secret", stdout);
        Assert.Contains("then close unauthorized | The connection did not authenticate within 1 s", stdout);
        for (int i = 0; i < 400 && (host.Peers > 1 || server.Connections.Count > 1); i++) await Task.Delay(25);
        Assert.Equal(1, host.Peers);
        Assert.Single(server.Connections);

        Assert.Equal("erin over zeromq from loopback", await proven.CallAsync<string>("who"));
        Assert.True(proven.IsConnected);
    }

    [Fact]
    public async Task CurveAdmitsTheClientsOnTheListByNameAndRefusesOthersAtConnect()
    {
        (string serverPublic, string serverSecret) = ZeroMqCurve.GenerateKeyPair();
        (string alicePublic, string aliceSecret) = ZeroMqCurve.GenerateKeyPair();
        (string evePublic, string eveSecret) = ZeroMqCurve.GenerateKeyPair();
        Assert.Equal(40, serverPublic.Length);

        await using IpyRpcServer server = Server();
        var curve = ZeroMqCurve.ForServer(serverPublic, serverSecret, new Dictionary<string, string> { [alicePublic] = "alice" });
        // An allow-list authenticates callers, so the server may listen on every interface.
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://0.0.0.0:*", new ZeroMqOptions { Curve = curve });
        string endpoint = "tcp://127.0.0.1:" + host.Endpoint[(host.Endpoint.LastIndexOf(':') + 1)..];

        await using (IpyRpcClient alice = await IpyRpcZeroMqClient.ConnectAsync(endpoint, zeroMq: new ZeroMqOptions { Curve = ZeroMqCurve.ForClient(serverPublic, alicePublic, aliceSecret) }))
        {
            Assert.StartsWith("alice over zeromq", await alice.CallAsync<string>("who"));
        }

        var eve = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() =>
            IpyRpcZeroMqClient.ConnectAsync(endpoint, zeroMq: new ZeroMqOptions { Curve = ZeroMqCurve.ForClient(serverPublic, evePublic, eveSecret) }).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("refused this client's CURVE key", eve.Message);

        (string otherPublic, _) = ZeroMqCurve.GenerateKeyPair();
        var impostor = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() =>
            IpyRpcZeroMqClient.ConnectAsync(endpoint, zeroMq: new ZeroMqOptions { Curve = ZeroMqCurve.ForClient(otherPublic, alicePublic, aliceSecret) }).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("CURVE handshake", impostor.Message);
    }

    [Fact]
    public async Task AServerWithoutAuthenticationRefusesToBindBeyondLoopback()
    {
        await using IpyRpcServer server = Server();
        var e = Assert.Throws<InvalidOperationException>(() => IpyRpcZeroMqServer.Start(server, "tcp://*:*"));
        Assert.Contains("CURVE", e.Message);
        Assert.Throws<InvalidOperationException>(() => IpyRpcZeroMqServer.Start(server, "tcp://0.0.0.0:*"));
        await using IpyRpcZeroMqServer local = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*"); // loopback is fine
        Assert.StartsWith("tcp://127.0.0.1:", local.Endpoint);
    }
}

public sealed class NothingWithoutCredentialsTests
{
    [Fact]
    public async Task NoKindOfMessageGetsThroughZeroMqWithoutTheSecret()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "s" });
        server.Register(typeof(ZmqWho)).Register(typeof(IpyRpc.Tests.Fuzz.FuzzFunctions));
        await using IpyRpcZeroMqServer host = IpyRpcZeroMqServer.Start(server, "tcp://127.0.0.1:*");
        using var dealer = new RawDealer(host.Endpoint);
        var sent = IpyRpc.Tests.Fuzz.Corpus.Messages.Where(m => m.Kind is MessageKind.Describe or MessageKind.Call or MessageKind.Submit or MessageKind.Attach
            or MessageKind.Status or MessageKind.List || (m.Kind == MessageKind.Cancel && m.JobId is not null)).ToArray();
        foreach (IpyRpcMessage m in sent)
        {
            dealer.Send([MessageCodec.EncodeHeader(m), .. m.Parts.Select(p => p.ToArray())]);
            IpyRpcMessage reply = dealer.ReceiveMessage();
            Assert.Equal((MessageKind.Error, m.Id), (reply.Kind, reply.Id));
            Assert.Equal(ErrorCodes.Unauthorized, RemoteError.Decode(reply.Body.Span, reply.Serialization).Code);
        }

        Assert.Empty(await server.Queue.ListAsync()); // nothing ran, nothing was queued
    }
}
