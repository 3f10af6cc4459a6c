using System.Reflection;
using IpyRpc;
using Microsoft.CodeAnalysis;

namespace IpyRpc.Generators.Tests;

public sealed class CompileAndRunTests
{
    [Fact]
    public void GeneratedCodeCompilesWithoutWarnings()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute);
        Assert.Empty(result.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(result.CompileDiagnostics);
    }

    [Fact]
    public async Task GeneratedFunctionsAndProxiesCanBeCalled()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute);
        Assembly assembly = GeneratorHarness.Load(result.Output);
        Type compute = assembly.GetType("Demo.Compute")!;

        await using var server = new IpyRpcServer();
        server.Register(compute);
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

        Assert.Equal(5, await client.CallAsync<int>("add", 2, 3));
        Assert.Equal(25.0, await client.CallAsync<double>("math.scale", 10));
        Assert.Equal("Adds two integers.", client.Describe("add").Summary);
        Assert.Equal("2.5D", client.Describe("math.scale").Parameters[1].DefaultValue);

        // The generated proxy, reached by reflection only because this test compiled it at run time.
        Type proxyType = assembly.GetType("Demo.ComputeClient")!;
        object proxy = proxyType.GetMethod("Create")!.Invoke(null, [client])!;
        var add = (Task<int>)proxyType.GetMethod("Add")!.Invoke(proxy, [20, 22, null, CancellationToken.None])!;
        Assert.Equal(42, await add);

        Type requestType = assembly.GetType("Demo.Request")!;
        object request = Activator.CreateInstance(requestType, "w", new[] { 1, 2, 3 }, new Dictionary<string, double> { ["w"] = 2 })!;
        var crunch = (Task)proxyType.GetMethod("Crunch", [requestType, typeof(CallOptions), typeof(CancellationToken)])!.Invoke(proxy, [request, null, CancellationToken.None])!;
        await crunch;
        object report = crunch.GetType().GetProperty("Result")!.GetValue(crunch)!;
        Assert.Equal(12.0, report.GetType().GetProperty("Total")!.GetValue(report));

        // The same function for a pointer to its result: the report stays on the server.
        var kept = (Task)proxyType.GetMethod("CrunchAsPointerAsync", [requestType, typeof(CallOptions), typeof(CancellationToken)])!.Invoke(proxy, [request, null, CancellationToken.None])!;
        await kept;
        var pointer = (RemotePointer)kept.GetType().GetProperty("Result")!.GetValue(kept)!;
        Assert.Equal("Report", pointer.ValueType);
        Assert.Equal(1, server.Data.Count);
    }
}
