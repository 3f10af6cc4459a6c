using IpyRpc;
using IpyRpc.Protocol;

namespace IpyRpc.Tests.Calls;

public sealed class ErrorTests
{
    public static TheoryData<Serialization> Serializations => new() { Serialization.MessagePack, Serialization.Json };

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task ARemoteExceptionArrivesWithTypeMessageStackAndInnerChain(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        var e = await Assert.ThrowsAsync<RemoteException>(() => p.Client.CallAsync<object>("fail", "boom"));
        Assert.Equal("System.InvalidOperationException", e.RemoteType);
        Assert.Equal("boom", e.RemoteMessage);
        Assert.Equal("fail", e.Function);
        Assert.Contains("BehaviourFunctions.Fail", e.RemoteStackTrace);
        var inner = Assert.IsType<RemoteException>(e.InnerException);
        Assert.Equal("System.FormatException", inner.RemoteType);
        Assert.Equal("inner: boom", inner.RemoteMessage);
        Assert.Contains("System.InvalidOperationException: fail: boom", e.ToString());

        // The server keeps serving.
        Assert.Equal(3, await p.Client.CallAsync<int>("add", 1, 2));
    }

    [Fact]
    public async Task TheRemoteStackEndsAtTheFunctionWithoutTheFramesThatCalledIt()
    {
        await using InProcess p = await InProcess.StartAsync();
        foreach ((string function, string[] frames) in new[] { ("fail", new[] { "BehaviourFunctions.Fail(" }), ("fail_later", ["BehaviourFunctions.ThrowArgument(", "BehaviourFunctions.FailLater("]) })
        {
            var e = await Assert.ThrowsAsync<RemoteException>(() => p.Client.CallAsync<object>(function, "boom"));
            string stack = e.RemoteStackTrace!;
            foreach (string frame in frames) Assert.Contains(frame, stack);
            Assert.DoesNotContain("_IpyRpcDispatch", stack); // the generated dispatch,
            Assert.DoesNotContain("IpyRpc.FunctionRegistry", stack); // the job runner,
            Assert.DoesNotContain("System.Threading", stack); // and the thread pool under them
            Assert.DoesNotContain("previous location", stack.Split('\n')[^1]);
        }
    }

    [Fact]
    public void AStackThatStartsInTheDispatchIsKeptWhole()
    {
        const string Stack = "   at Demo_IpyRpcDispatch.<>c.<CreateFunctions>b__1_2(IpyRpcInvocation call)\n   at IpyRpc.FunctionRegistry.Run()";
        Assert.Equal(Stack, RemoteError.EndingAtTheFunction(Stack));
        Assert.Equal("   at Demo.Fail()", RemoteError.EndingAtTheFunction("   at Demo.Fail()\n--- End of stack trace from previous location ---\n   at Demo_IpyRpcDispatch.<>c.B()\n   at X.Y()"));
        Assert.Equal("   at Demo.Fail()", RemoteError.EndingAtTheFunction("   at Demo.Fail()")); // no dispatch: a fallback's, a worker's own
    }

    [Fact]
    public async Task AnUnknownFunctionGetsASpecificErrorWithAHint()
    {
        await using InProcess p = await InProcess.StartAsync();
        var e = await Assert.ThrowsAsync<UnknownFunctionException>(() => p.Client.CallAsync<int>("addd", 1, 2));
        Assert.Equal(ErrorCodes.UnknownFunction, e.Code);
        Assert.Contains("Did you mean 'add'?", e.Message);
        var none = await Assert.ThrowsAsync<UnknownFunctionException>(() => p.Client.CallAsync<int>("completely_unrelated_name"));
        Assert.DoesNotContain("Did you mean", none.Message);
    }

    [Theory]
    [MemberData(nameof(Serializations))]
    public async Task AWrongArgumentTypeNamesTheParameterAndTheExpectedType(Serialization serialization)
    {
        await using InProcess p = await InProcess.StartAsync(serialization);
        var e = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<int>("add", "two", 3));
        Assert.Equal("a", e.Parameter);
        Assert.Contains("Argument 'a' of add must be int", e.Message);
        Assert.Contains("found a string", e.Message);
    }

    [Fact]
    public async Task AScalarWhereAnArrayIsExpectedSaysAnArrayOfNumbers()
    {
        await using InProcess p = await InProcess.StartAsync();
        var e = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<double>("sum", 3));
        Assert.Contains("Argument 'values' of sum must be double[]: Expected an array of numbers but found an integer", e.Message);
        Assert.Equal(6.0, await p.Client.CallAsync<double>("sum", [new[] { 1.0, 2.0, 3.0 }]));
    }

    [Fact]
    public async Task ATimeoutThatIsNotPositiveIsRefusedByNameAndInfiniteMeansNone()
    {
        await using IpyRpcServer server = new();
        server.Register(typeof(ShapeFunctions)).Register(typeof(BehaviourFunctions));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { DefaultTimeout = TimeSpan.FromMilliseconds(100), Output = (_, _) => { } });
        foreach (TimeSpan wrong in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1) })
        {
            var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.CallAsync<int>("add", [1, 2], new CallOptions { Timeout = wrong }));
            Assert.Contains("A call's timeout must be positive", e.Message);
        }

        // The client's default of 100 ms holds, unless a call says it has none: that one is still running well after it.
        await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => client.CallAsync<string>("wait_for_cancel", Gates.NewName("default")));
        string gate = Gates.NewName("infinite");
        using var stop = new CancellationTokenSource();
        Task<string> endless = client.CallAsync<string>("wait_for_cancel", [gate], new CallOptions { Timeout = Timeout.InfiniteTimeSpan }, stop.Token);
        await Gates.WaitAsync(gate + ".started");
        await Task.Delay(400);
        Assert.False(endless.IsCompleted);
        stop.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => endless);
    }

    [Fact]
    public async Task MissingExtraAndUnknownArgumentsAreReportedByName()
    {
        await using InProcess p = await InProcess.StartAsync();
        var missing = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<int>("add", 1));
        Assert.Equal("b", missing.Parameter);
        Assert.Contains("missing the required argument 'b' (int)", missing.Message);

        var extra = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<int>("add", 1, 2, 3));
        Assert.Contains("takes 2 arguments but 3 were given", extra.Message);

        var unknown = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallNamedAsync<int>("add", new Dictionary<string, object?> { ["a"] = 1, ["c"] = 2 }));
        Assert.Equal("c", unknown.Parameter);
        Assert.Contains("no parameter named 'c'", unknown.Message);

        var outOfRange = await Assert.ThrowsAsync<InvalidArgumentsException>(() => p.Client.CallAsync<int>("add", 1L << 40, 1));
        Assert.Contains("out of range", outOfRange.Message);
    }

    [Fact]
    public async Task AServerSideTimeoutStopsACallThatIgnoresItsToken()
    {
        await using InProcess p = await InProcess.StartAsync(configure: s => s.Config(new() { ["sleep"] = new() { Timeout = TimeSpan.FromMilliseconds(200) } }));
        var e = await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => p.Client.CallAsync<int>("sleep", 5000));
        Assert.Equal(ErrorCodes.Timeout, e.Code);
        Assert.Contains("timeout", e.Message);
        Assert.Equal(10, await p.Client.CallAsync<int>("sleep", 10));
    }

    [Fact]
    public async Task AnInfiniteTimeoutInTheConfigLiftsABroaderPatternsLimit()
    {
        await using InProcess p = await InProcess.StartAsync(configure: s => s.Config(new()
        {
            ["*"] = new() { Timeout = TimeSpan.FromMilliseconds(200) },
            ["sleep"] = new() { Timeout = Timeout.InfiniteTimeSpan },
        }));
        Assert.Equal(600, await p.Client.CallAsync<int>("sleep", 600));
        var limited = await Assert.ThrowsAsync<IpyRpcTimeoutException>(() => p.Client.CallAsync<string>("wait_for_cancel", Gates.NewName("limited")));
        Assert.Equal(ErrorCodes.Timeout, limited.Code);
    }

    [Fact]
    public void OptionsThatCouldNeverWorkAreRefusedWhenTheyAreSet()
    {
        foreach (TimeSpan bad in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1) })
        {
            Assert.Contains("Timeout must be positive", Assert.Throws<ArgumentOutOfRangeException>(() => new FunctionOptions { Timeout = bad }).Message);
            Assert.Contains("PointerTimeToLive must be positive", Assert.Throws<ArgumentOutOfRangeException>(() => new FunctionOptions { PointerTimeToLive = bad }).Message);
            Assert.Contains("DefaultTimeToLive must be positive", Assert.Throws<ArgumentOutOfRangeException>(() => new DataStoreOptions { DefaultTimeToLive = bad }).Message);
        }

        Assert.Contains("MaxArgumentBytes must be a positive", Assert.Throws<ArgumentOutOfRangeException>(() => new FunctionOptions { MaxArgumentBytes = 0 }).Message);
        Assert.Contains("MaxBytes must be a positive", Assert.Throws<ArgumentOutOfRangeException>(() => new DataStoreOptions { MaxBytes = -1 }).Message);
        Assert.Equal(Timeout.InfiniteTimeSpan, new FunctionOptions { PointerTimeToLive = Timeout.InfiniteTimeSpan }.PointerTimeToLive);
        Assert.Equal(Timeout.InfiniteTimeSpan, new DataStoreOptions { DefaultTimeToLive = Timeout.InfiniteTimeSpan }.DefaultTimeToLive);
    }

    [Fact]
    public async Task ACallerSideTimeoutFailsTheCallAndCancelsTheRemoteWork()
    {
        await using InProcess p = await InProcess.StartAsync();
        string gate = Gates.NewName("timeout");
        var e = await Assert.ThrowsAsync<IpyRpcTimeoutException>(() =>
            p.Client.CallAsync<string>("wait_for_cancel", [gate], new CallOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.Equal("wait_for_cancel", e.Function);
        await Gates.WaitAsync(gate + ".cancelled");
    }

    [Fact]
    public async Task CancellingOnTheClientReachesTheServersCancellationToken()
    {
        await using InProcess p = await InProcess.StartAsync();
        string gate = Gates.NewName("cancel");
        using var cts = new CancellationTokenSource();
        Task<string> call = p.Client.CallAsync<string>("wait_for_cancel", [gate], null, cts.Token);
        await Gates.WaitAsync(gate + ".started");
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await Gates.WaitAsync(gate + ".cancelled");
        Assert.Equal(2, await p.Client.CallAsync<int>("add", 1, 1));
    }
}
