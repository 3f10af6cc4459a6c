using System.Collections.Concurrent;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.Tests.Pointers;

namespace IpyRpc.Tests.Auth;

/// <summary>
/// On a server that requires authentication, a connection that has not authenticated within
/// <see cref="IpyRpcServerOptions.AuthenticationTimeout"/> is closed, unless it is using pointers' keys, which are
/// credentials of their own.
/// </summary>
public sealed class AuthenticationTimeoutTests
{
    [Fact]
    public async Task AnUnauthenticatedConnectionIsClosedOnceItsTimeIsUpUnlessItFetchesByRightKeys()
    {
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "s", AuthenticationTimeout = TimeSpan.FromSeconds(2) });
        server.Register(typeof(PointerFunctions));
        await using IpyRpcClient proven = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { SharedSecret = "s", Output = (_, _) => { } });
        RemotePointer<List<int>> pointer = await proven.CallPointerAsync<List<int>>("ptr.range", 3);

        // Two connections that say hello and never prove the secret; one fetches by the pointer's key every 300 ms, the
        // other with a wrong key.
        (ServerSession Session, ConcurrentQueue<IpyRpcMessage> Sent) rightKeys = await OpenAsync(server), wrongKeys = await OpenAsync(server);
        for (int i = 0; i < 17; i++)
        {
            await rightKeys.Session.HandleAsync(Fetch(pointer.Path, pointer.SecretKey, 10 + (ulong)i));
            await wrongKeys.Session.HandleAsync(Fetch(pointer.Path, new string('0', pointer.SecretKey.Length), 10 + (ulong)i));
            await Task.Delay(300);
        }

        // Two and a half timeouts on: the one that used the key is open and was answered each time; the other was closed
        // at its timeout and told why.
        Assert.False(rightKeys.Session.Ended.IsCompleted);
        Assert.Equal(17, rightKeys.Sent.Count(m => m.Kind == MessageKind.Result));
        DisconnectInfo closed = await wrongKeys.Session.Ended.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(DisconnectReason.Unauthorized, closed.Reason);
        Assert.Contains("did not authenticate within 2 s", closed.Message);
        Assert.Contains(wrongKeys.Sent, m => m.Kind == MessageKind.Close);

        // Once it stops fetching, its time runs out as well; the client that proved the secret stays.
        Assert.Equal(DisconnectReason.Unauthorized, (await rightKeys.Session.Ended.WaitAsync(TimeSpan.FromSeconds(20))).Reason);
        Assert.True(proven.IsConnected);
        Assert.Equal(3, await proven.CallAsync<int>("ptr.count", pointer));
        server.Data.Dispose();
    }

    private static async Task<(ServerSession, ConcurrentQueue<IpyRpcMessage>)> OpenAsync(IpyRpcServer server)
    {
        var sent = new ConcurrentQueue<IpyRpcMessage>();
        ServerSession session = server.CreateSession((message, _) =>
        {
            sent.Enqueue(message);
            return default;
        }, new IpyRpcConnection("test", null));
        await session.HandleAsync(new IpyRpcMessage { Kind = MessageKind.Hello, Id = 1, Versions = [1] });
        Assert.Equal(["secret"], Assert.Single(sent).Auth);
        return (session, sent);
    }

    private static IpyRpcMessage Fetch(string path, string key, ulong id) => new()
    {
        Kind = MessageKind.Fetch,
        Id = id,
        Parts = [JobCodec.Encode(new Dictionary<string, object?> { ["path"] = path, ["secret_key"] = key }, Serialization.MessagePack)],
    };
}
