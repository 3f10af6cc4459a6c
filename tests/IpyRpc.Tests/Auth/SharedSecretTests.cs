using System.Security.Claims;
using IpyRpc.Jobs;
using IpyRpc.Protocol;
using IpyRpc.Transports;

namespace IpyRpc.Tests.Auth;

public sealed class SharedSecretTests
{
    private const string Secret = "correct horse battery staple";

    private static IpyRpcServer Server(IpyRpcServerOptions? options = null, GlobConfig? config = null)
    {
        var server = new IpyRpcServer(options ?? new IpyRpcServerOptions { SharedSecret = Secret });
        server.Register(typeof(AuthFunctions));
        if (config is not null) server.Config(config);
        return server;
    }

    private static Task<IpyRpcClient> ConnectAsync(IpyRpcServer server, string? secret = Secret, string? name = null)
        => IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { SharedSecret = secret, ClientName = name, Output = (_, _) => { } });

    [Fact]
    public async Task TheRightSecretConnectsAndTheCallerIsKnownByItsName()
    {
        await using IpyRpcServer server = Server();
        await using IpyRpcClient client = await ConnectAsync(server, name: "alice");
        Assert.Equal("alice over in-process", await client.CallAsync<string>("auth.whoami"));
        Assert.DoesNotContain(client.Functions, f => f.Parameters.Any(p => p.Type.Contains("IpyRpcConnection"))); // filled by the call, never listed
    }

    [Fact]
    public async Task AShortSecretIsWarnedAboutWhenTheServerIsMade()
    {
        // Its proofs can be had by anyone who connects, and guesses tested against them offline.
        var log = new ListLogger();
        await using (var weak = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = "hunter2", LoggerFactory = log }))
        {
            Assert.Contains(log.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning && e.Message.Contains("7 characters long") && e.Message.Contains("offline"));
        }

        var quiet = new ListLogger();
        await using (var strong = new IpyRpcServer(new IpyRpcServerOptions { SharedSecret = Secret, LoggerFactory = quiet }))
        {
            Assert.DoesNotContain(quiet.Entries, e => e.Message.Contains("shared secret"));
        }
    }

    [Fact]
    public async Task AWrongSecretFailsAtConnectWithASpecificError()
    {
        await using IpyRpcServer server = Server();
        var e = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => ConnectAsync(server, "wrong").WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCodes.Unauthorized, e.Code);
        Assert.Contains("shared secret", e.Message);
        var none = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => ConnectAsync(server, secret: null).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("requires a shared secret", none.Message);
    }

    [Fact]
    public async Task AClientCatchesAServerThatDoesNotKnowItsSecret()
    {
        await using IpyRpcServer impostor = Server(new IpyRpcServerOptions { SharedSecret = "another secret" });
        var e = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => ConnectAsync(impostor).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("server's proof does not match", e.Message);
    }

    [Fact]
    public async Task WithoutAuthenticationNoMessageButHelloAndPingGetsThrough()
    {
        await using IpyRpcServer server = Server();
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair();
        using var stop = new CancellationTokenSource();
        Task serving = server.ServeAsync(serverEnd, stop.Token);
        byte[] args = JobCodec.Encode(new object?[] { "a", 1L }, Serialization.MessagePack);
        IpyRpcMessage[] attempts =
        [
            new() { Kind = MessageKind.Describe, Id = 1 },
            new() { Kind = MessageKind.Call, Id = 2, Function = "auth.whoami", Parts = [new byte[] { 0x90 }] },
            new() { Kind = MessageKind.Submit, Id = 3, Function = "auth.transfer", Parts = [args] },
            new() { Kind = MessageKind.Attach, Id = 4, JobId = "any" },
            new() { Kind = MessageKind.Status, Id = 5, JobId = "any" },
            new() { Kind = MessageKind.List, Id = 6 },
            new() { Kind = MessageKind.Cancel, Id = 7, JobId = "any" },
            new() { Kind = MessageKind.Auth, Id = 8, Parts = [JobCodec.Encode(new Dictionary<string, object?> { ["scheme"] = "secret", ["proof"] = new byte[32] }, Serialization.MessagePack)] },
        ];
        foreach (IpyRpcMessage m in attempts) await client.SendAsync(m);
        await client.SendAsync(new IpyRpcMessage { Kind = MessageKind.Ping, Id = 9 });
        var replies = new Dictionary<ulong, IpyRpcMessage>();
        while (replies.Count < attempts.Length + 1)
        {
            IpyRpcMessage reply = (await client.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)))!;
            replies[reply.Id] = reply;
        }

        foreach (IpyRpcMessage m in attempts)
        {
            Assert.Equal(MessageKind.Error, replies[m.Id].Kind);
            Assert.Equal(ErrorCodes.Unauthorized, RemoteError.Decode(replies[m.Id].Body.Span, replies[m.Id].Serialization).Code);
        }

        Assert.Equal(MessageKind.Pong, replies[9].Kind);
        Assert.Empty(await server.Queue.ListAsync()); // nothing was queued
        stop.Cancel();
        await client.DisposeAsync();
        await serving;
    }

    [Fact]
    public async Task AnAuthorizerSeesTheFunctionAndTheDecodedArgumentsAndItsReasonReachesTheCaller()
    {
        AuthorizationContext? seen = null;
        var config = new GlobConfig
        {
            ["auth.transfer"] = new FunctionOptions
            {
                Auth = async context =>
                {
                    await Task.Yield(); // asynchronous rules work too
                    if (context.Purpose != AuthorizationPurpose.Call) return AuthorizationResult.Allow(); // listed for everyone
                    seen = context;
                    return context.Arguments!["account"] as string == context.Principal.Identity!.Name
                        ? AuthorizationResult.Allow()
                        : AuthorizationResult.Deny("you may only move your own money");
                },
            },
        };
        await using IpyRpcServer server = Server(config: config);
        await using IpyRpcClient alice = await ConnectAsync(server, name: "alice");

        Assert.Equal("5 from alice", await alice.CallAsync<string>("auth.transfer", "alice", 5));
        Assert.Equal("auth.transfer", seen!.Function);
        Assert.Equal(AuthorizationPurpose.Call, seen.Purpose);
        Assert.Equal(5L, seen.Arguments!["amount"]);
        var e = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => alice.CallNamedAsync<string>("auth.transfer", new Dictionary<string, object?> { ["account"] = "bob", ["amount"] = 500 }));
        Assert.Contains("alice may not call auth.transfer: you may only move your own money", e.Message);
        await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => alice.SubmitAsync<string>("auth.transfer", "bob", 1)); // submits too
        Assert.DoesNotContain(await server.Queue.ListAsync(), j => j.State == JobState.Queued);
    }

    [Fact]
    public async Task ListingsShowOnlyWhatTheCallerMayCallUnlessConfiguredOtherwise()
    {
        var config = new GlobConfig { ["auth.admin"] = new FunctionOptions { Auth = Authorize.Names("root") } };
        await using IpyRpcServer server = Server(config: config);
        await using IpyRpcClient alice = await ConnectAsync(server, name: "alice");
        await using IpyRpcClient root = await ConnectAsync(server, name: "root");
        Assert.DoesNotContain(alice.Functions, f => f.Name == "auth.admin");
        Assert.Contains(alice.Functions, f => f.Name == "auth.whoami");
        Assert.Contains(root.Functions, f => f.Name == "auth.admin");
        await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => alice.CallAsync<string>("auth.admin"));
        Assert.Equal("admin stuff", await root.CallAsync<string>("auth.admin"));

        await using IpyRpcServer everything = Server(new IpyRpcServerOptions { SharedSecret = Secret, ListOnlyAllowedFunctions = false }, config);
        await using IpyRpcClient listed = await ConnectAsync(everything, name: "alice");
        Assert.Contains(listed.Functions, f => f.Name == "auth.admin");
    }

    [Fact]
    public async Task ListingRulesThatLookSomethingUpAreAskedSideBySide()
    {
        // Each listing rule waits until three are deciding at once: asked one function after another, none would get there.
        int deciding = 0, most = 0;
        var three = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async ValueTask<AuthorizationResult> SlowRule(AuthorizationContext context)
        {
            if (context.Purpose != AuthorizationPurpose.Listing) return AuthorizationResult.Allow();
            int now = Interlocked.Increment(ref deciding);
            lock (three) most = Math.Max(most, now);
            if (now >= 3) three.TrySetResult();
            await Task.WhenAny(three.Task, Task.Delay(TimeSpan.FromSeconds(3)));
            Interlocked.Decrement(ref deciding);
            return context.Function == "auth.admin" ? AuthorizationResult.Deny("not for listing") : AuthorizationResult.Allow();
        }

        var config = new GlobConfig { ["auth.*"] = new FunctionOptions { Auth = SlowRule } };
        await using IpyRpcServer server = Server(config: config);
        await using IpyRpcClient alice = await ConnectAsync(server, name: "alice");
        Assert.True(most >= 3, $"at most {most} listing rules decided at once");
        Assert.DoesNotContain(alice.Functions, f => f.Name == "auth.admin");
        Assert.Contains(alice.Functions, f => f.Name == "auth.whoami");
    }

    [Fact]
    public async Task JobsBelongToTheirSubmitterUnlessShared()
    {
        await using IpyRpcServer server = Server(config: new GlobConfig { ["auth.transfer"] = new FunctionOptions { SharedJobs = true } });
        await using IpyRpcClient alice = await ConnectAsync(server, name: "alice");
        await using IpyRpcClient bob = await ConnectAsync(server, name: "bob");
        string gate = Gates.NewName("owned");
        IpyRpcJob<string> job = await alice.SubmitAsync<string>("auth.wait", gate);
        Assert.Equal("alice", job.Info.Owner);

        await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => bob.AttachAsync<string>(job.Id));
        await Assert.ThrowsAsync<IpyRpcNotFoundException>(() => bob.CancelJobAsync(job.Id));
        Assert.DoesNotContain(await bob.ListJobsAsync(), j => j.Id == job.Id);
        Assert.Contains(await alice.ListJobsAsync(), j => j.Id == job.Id);
        Gates.Open(gate);
        Assert.Equal(gate, await job);

        IpyRpcJob<string> shared = await alice.SubmitAsync<string>("auth.transfer", "alice", 7);
        Assert.Equal("7 from alice", await (await bob.AttachAsync<string>(shared.Id)).WaitAsync());
    }

    [Fact]
    public async Task ACallerFromAnotherMachineIsRefusedByAServerWithoutAuthentication()
    {
        await using IpyRpcServer open = Server(new IpyRpcServerOptions());
        var remote = new IpyRpcConnection("test", "10.1.2.3:40000");
        var e = await Assert.ThrowsAsync<IpyRpcUnauthorizedException>(() => ConnectOverAsync(open, remote).WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Contains("answers only callers on its own machine", e.Message);

        await using IpyRpcServer trusting = Server(new IpyRpcServerOptions { AllowUnauthenticatedRemote = true });
        await using IpyRpcClient client = await ConnectOverAsync(trusting, new IpyRpcConnection("test", "10.1.2.3:40001"));
        Assert.Equal("anonymous over test", await client.CallAsync<string>("auth.whoami"));
        Assert.Throws<InvalidOperationException>(() => open.EnsureMayListen("tcp://0.0.0.0:5555", transportAuthenticates: false, "CURVE"));
        open.EnsureMayListen("tcp://127.0.0.1:5555", transportAuthenticates: false, "CURVE"); // loopback is fine
        trusting.EnsureMayListen("tcp://0.0.0.0:5555", transportAuthenticates: false, "CURVE"); // opted out
    }

    private static async Task<IpyRpcClient> ConnectOverAsync(IpyRpcServer server, IpyRpcConnection connection)
    {
        (IMessageChannel client, IMessageChannel serverEnd) = InProcessTransport.CreatePair();
        var stop = new CancellationTokenSource();
        Task serving = server.ServeAsync(serverEnd, connection, stop.Token);
        return await IpyRpcClient.ConnectAsync(client, new IpyRpcClientOptions(), async () =>
        {
            await client.DisposeAsync();
            stop.Cancel();
            await serving;
            stop.Dispose();
        });
    }

    [Fact]
    public async Task OneConnectionRunsNoMoreThanItsShareOfCallsAndTheRestWaitInABoundedLine()
    {
        await using IpyRpcServer server = Server(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 2, MaxCallsWaitingPerConnection = 3, MaxBytesInFlightPerConnection = 10_000 });
        await using IpyRpcClient greedy = await ConnectAsync(server, secret: null);
        string[] gates = [Gates.NewName("slot"), Gates.NewName("slot")];
        Task<string>[] held = [.. gates.Select(g => greedy.CallAsync<string>("auth.wait", g))];
        foreach (string g in gates) await Gates.WaitAsync(g + ".started");

        // Past its share, a call waits to start; a caller may give up on one that waits; the line is bounded.
        using var giveUp = new CancellationTokenSource();
        string first = Gates.NewName("first"), abandoned = Gates.NewName("abandoned"), last = Gates.NewName("last");
        Task<string> waitingFirst = greedy.CallAsync<string>("auth.wait", [first], null);
        Task<string> waitingAbandoned = greedy.CallAsync<string>("auth.wait", [abandoned], null, giveUp.Token);
        Task<string> waitingLast = greedy.CallAsync<string>("auth.wait", [last], null);
        var refused = await Assert.ThrowsAsync<IpyRpcTooManyRequestsException>(() => greedy.CallAsync<string>("auth.whoami"));
        Assert.Contains("2 calls queued or running and 3 waiting to start", refused.Message);
        Assert.Contains("allows 2 calls at once, 3 more waiting", refused.Message);
        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waitingAbandoned);
        await greedy.PingAsync(); // the cancel it sent has been handled: it went first
        await using IpyRpcClient other = await ConnectAsync(server, secret: null);
        Assert.Equal("anonymous over in-process", await other.CallAsync<string>("auth.whoami")); // others are not starved
        Assert.False(Gates.Get(first + ".started").Task.IsCompleted); // nothing past the share started

        // As the running calls end, the waiting ones start in the order they came; the one given up on never does.
        Gates.Open(gates[0]);
        await Gates.WaitAsync(first + ".started");
        Gates.Open(gates[1]);
        await Gates.WaitAsync(last + ".started");
        Assert.False(Gates.Get(abandoned + ".started").Task.IsCompleted);
        Gates.Open(first);
        Gates.Open(last);
        Assert.Equal([first, last], await Task.WhenAll(waitingFirst, waitingLast));
        await Task.WhenAll(held);
        Assert.Equal("anonymous over in-process", await greedy.CallAsync<string>("auth.whoami")); // its share is back
        Assert.False(Gates.Get(abandoned + ".started").Task.IsCompleted);

        // Arguments count against the connection's bytes whether their call runs or waits.
        await Assert.ThrowsAsync<IpyRpcTooManyRequestsException>(() => greedy.CallAsync<int>("auth.size", new byte[20_000]));
    }

    [Fact]
    public async Task ACallThatWaitsForRoomPastItsTimeoutIsAnsweredThenAndNeverStarts()
    {
        // auth.size's timeout is the server's (configured), so only the server can answer it: the caller sets none.
        await using IpyRpcServer server = Server(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 1 }, new GlobConfig
        {
            ["auth.size"] = new FunctionOptions { Timeout = TimeSpan.FromMilliseconds(200) },
        });
        await using IpyRpcClient client = await ConnectAsync(server, secret: null);
        string holding = Gates.NewName("holding"), late = Gates.NewName("late");
        Task<string> held = client.CallAsync<string>("auth.wait", holding);
        await Gates.WaitAsync(holding + ".started");

        // Answered while the call that holds the room still runs: its timer, not the room, ends its wait.
        var e = await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => client.CallAsync<int>("auth.size", new byte[3]).WaitAsync(TimeSpan.FromSeconds(20)));
        Assert.Contains("auth.size did not start within its timeout of 200 ms", e.Message);
        Assert.False(held.IsCompleted);

        // A caller's own timeout takes its call out of the line (the caller tells the server it gave up).
        await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => client.CallAsync<string>("auth.wait", [late], new CallOptions { Timeout = TimeSpan.FromMilliseconds(200) }));
        await client.PingAsync(); // the cancel it sent has been handled: it went first
        Gates.Open(holding);
        Assert.Equal(holding, await held);
        Assert.Equal(3, await client.CallAsync<int>("auth.size", new byte[3])); // the room is back, and nobody waits in line before it
        Assert.False(Gates.Get(late + ".started").Task.IsCompleted);
    }

    [Fact]
    public async Task WithNoLineACallPastTheShareIsRefusedAtOnce()
    {
        await using IpyRpcServer server = Server(new IpyRpcServerOptions { MaxCallsInFlightPerConnection = 1, MaxCallsWaitingPerConnection = 0 });
        await using IpyRpcClient client = await ConnectAsync(server, secret: null);
        string holding = Gates.NewName("holding");
        Task<string> held = client.CallAsync<string>("auth.wait", holding);
        await Gates.WaitAsync(holding + ".started");
        await Assert.ThrowsAsync<IpyRpcTooManyRequestsException>(() => client.CallAsync<string>("auth.whoami"));
        Gates.Open(holding);
        await held;
    }

    [Fact]
    public async Task HowMuchOfAnExceptionTravelsIsConfigurableAndItsOwnPropertiesTravelAsData()
    {
        await using IpyRpcServer server = Server(new IpyRpcServerOptions(), new GlobConfig
        {
            ["auth.fail_custom"] = new FunctionOptions { ErrorDetail = ErrorDetail.Full },
            ["fail"] = new FunctionOptions { ErrorDetail = ErrorDetail.TypeAndMessage },
        });
        server.Register(typeof(BehaviourFunctions));
        await using IpyRpcClient client = await ConnectAsync(server, secret: null);

        var full = await Assert.ThrowsAsync<RemoteException>(() => client.InvokeAsync("auth.fail_custom", new IpyRpcArguments().Add(418, Formatting.Formatters.Int32)));
        Assert.Equal(typeof(CustomFailure).FullName, full.RemoteType);
        Assert.Contains(":line ", full.RemoteStackTrace); // Full keeps the build's file paths and lines
        Assert.Equal(418L, full.RemoteProperties["statusCode"]);
        Assert.Equal("retry later", full.RemoteProperties["hint"]);

        var bare = await Assert.ThrowsAsync<RemoteException>(() => client.InvokeAsync("fail", new IpyRpcArguments().Add("x", Formatting.Formatters.String)));
        Assert.Null(bare.RemoteStackTrace);
        Assert.Equal("System.InvalidOperationException", bare.RemoteType);
        Assert.Null(((RemoteException)bare.InnerException!).RemoteStackTrace);

        server.Config(new GlobConfig { ["auth.fail_custom"] = new FunctionOptions { ErrorDetail = ErrorDetail.StackWithoutPaths } });
        var paths = await Assert.ThrowsAsync<RemoteException>(() => client.InvokeAsync("auth.fail_custom", new IpyRpcArguments().Add(1, Formatting.Formatters.Int32)));
        Assert.Contains("AuthFunctions.FailCustom", paths.RemoteStackTrace);
        Assert.DoesNotContain(".cs:line", paths.RemoteStackTrace);
        Assert.DoesNotContain("/work/", paths.RemoteStackTrace);
    }

    [Fact]
    public async Task UnexpectedFailuresAreLogged()
    {
        var log = new ListLogger();
        await using var server = new IpyRpcServer(new IpyRpcServerOptions { Queue = new Jobs.UnreachableLookups(new InMemoryJobQueue()), LoggerFactory = log });
        server.Register(typeof(AuthFunctions));
        await using IpyRpcClient client = await ConnectAsync(server, secret: null);
        await Assert.ThrowsAsync<IpyRpcException>(() => client.GetJobAsync("x"));
        Assert.Contains(log.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Error && e.Message.Contains("status") && e.Exception is IOException);
    }
}
