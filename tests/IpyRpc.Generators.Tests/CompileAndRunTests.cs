using System.Linq.Expressions;
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

        // A record parameter takes the value or a pointer to one (ValueOrPointer<Request>, converted implicitly in C#).
        Type requestType = assembly.GetType("Demo.Request")!;
        object request = Activator.CreateInstance(requestType, "w", new[] { 1, 2, 3 }, new Dictionary<string, double> { ["w"] = 2 })!;
        Type argumentType = typeof(ValueOrPointer<>).MakeGenericType(requestType);
        object argument = argumentType.GetMethod("op_Implicit", [requestType])!.Invoke(null, [request])!;
        MethodInfo crunchMethod = proxyType.GetMethod("Crunch", [argumentType, typeof(CallOptions), typeof(CancellationToken)])!;
        var crunch = (Task)crunchMethod.Invoke(proxy, [argument, null, CancellationToken.None])!;
        await crunch;
        object report = crunch.GetType().GetProperty("Result")!.GetValue(crunch)!;
        Assert.Equal(12.0, report.GetType().GetProperty("Total")!.GetValue(report));

        // The same call for a pointer to its result, client.AsPointerAsync(() => proxy.Crunch(request)): the report stays on the server.
        Type reportType = report.GetType();
        Type callType = typeof(Func<>).MakeGenericType(typeof(Task<>).MakeGenericType(reportType));
        Delegate call = Expression.Lambda(callType, Expression.Call(Expression.Constant(proxy), crunchMethod,
            Expression.Constant(argument), Expression.Constant(null, typeof(CallOptions)), Expression.Constant(CancellationToken.None))).Compile();
        var kept = (Task)typeof(IpyRpcPeer).GetMethod(nameof(IpyRpcPeer.AsPointerAsync))!.MakeGenericMethod(reportType).Invoke(client, [call])!;
        await kept;
        var pointer = (RemotePointer)kept.GetType().GetProperty("Result")!.GetValue(kept)!;
        Assert.Equal("Report", pointer.ValueType);
        Assert.Equal(1, server.Data.Count);
    }

    [Fact]
    public async Task AClassImplementingAContractServesItsMethodsUnderTheContractsNames()
    {
        // The implementation has no attribute at all: the contract says what is remote.
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Contract, """
            using System.Collections.Generic;
            using System.Threading;
            using System.Threading.Tasks;
            namespace Calc.Server;

            public sealed class Calculator : Calc.Contracts.ICalculator
            {
                public int Add(int a, int b) => a + b;

                public Task<Calc.Contracts.Summary> SummarizeAsync(double[] values, Calc.Contracts.Rounding rounding, CancellationToken cancellationToken)
                {
                    if (values.Length == 0) throw new System.ArgumentException("The series is empty.");
                    double mean = 0;
                    foreach (double v in values) mean += v / values.Length;
                    return Task.FromResult(new Calc.Contracts.Summary(values.Length, rounding == Calc.Contracts.Rounding.Down ? System.Math.Floor(mean) : mean));
                }

                public async IAsyncEnumerable<int> Count(int to)
                {
                    for (int i = 1; i <= to; i++) { await Task.Yield(); yield return i; }
                }
            }
            """);
        Assert.Empty(result.CompileDiagnostics);
        Assembly assembly = GeneratorHarness.Load(result.Output);
        Type calculator = assembly.GetType("Calc.Server.Calculator")!;

        await using var server = new IpyRpcServer();
        server.Register(Activator.CreateInstance(calculator)!);
        Assert.Equal(["Count", "calc.add", "calc.summarize"], server.Functions.Select(f => f.Name).Order(StringComparer.Ordinal));
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

        Assert.Equal(5, await client.CallAsync<int>("calc.add", 2, 3));
        Assert.Equal("Summarizes a series.", client.Describe("calc.summarize").Summary);
        Assert.Equal("Rounding.Nearest", client.Describe("calc.summarize").Parameters[1].DefaultValue);

        // The proxy generated from the contract: the enum argument and the record result cross as values.
        Type proxyType = assembly.GetType("Calc.Contracts.CalculatorClient")!;
        object proxy = proxyType.GetMethod("Create")!.Invoke(null, [client])!;
        object calc = proxyType.GetProperty("Calc")!.GetValue(proxy)!;
        Type rounding = assembly.GetType("Calc.Contracts.Rounding")!;
        var summarize = (Task)calc.GetType().GetMethod("SummarizeAsync", [typeof(double[]), rounding, typeof(CallOptions), typeof(CancellationToken)])!
            .Invoke(calc, [new[] { 1.0, 2.0, 4.5 }, Enum.Parse(rounding, "Down"), null, CancellationToken.None])!;
        await summarize;
        object summary = summarize.GetType().GetProperty("Result")!.GetValue(summarize)!;
        Assert.Equal(3, summary.GetType().GetProperty("Count")!.GetValue(summary));
        Assert.Equal(2.0, summary.GetType().GetProperty("Mean")!.GetValue(summary));

        // What the implementation throws arrives as a RemoteException naming the type.
        var empty = (Task)calc.GetType().GetMethod("SummarizeAsync", [typeof(double[]), rounding, typeof(CallOptions), typeof(CancellationToken)])!
            .Invoke(calc, [Array.Empty<double>(), Enum.Parse(rounding, "None"), null, CancellationToken.None])!;
        RemoteException thrown = await Assert.ThrowsAsync<RemoteException>(() => empty);
        Assert.Equal("System.ArgumentException", thrown.RemoteType);

        var counted = new List<int>();
        await foreach (int n in (IAsyncEnumerable<int>)proxyType.GetMethod("Count")!.Invoke(proxy, [4, null, CancellationToken.None])!) counted.Add(n);
        Assert.Equal([1, 2, 3, 4], counted);
    }

    [Fact]
    public async Task AContractImplementationRegisteredByTypeOrFromServicesSaysHowOrResolvesTheImplementation()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Contract, """
            namespace Calc.Server;
            public sealed class Calculator : Calc.Contracts.ICalculator
            {
                public int Add(int a, int b) => a + b + Offset;
                public int Offset { get; set; }
                public System.Threading.Tasks.Task<Calc.Contracts.Summary> SummarizeAsync(double[] values, Calc.Contracts.Rounding rounding, System.Threading.CancellationToken cancellationToken) => throw new System.NotSupportedException();
                public System.Collections.Generic.IAsyncEnumerable<int> Count(int to) => throw new System.NotSupportedException();
            }
            """);
        Assembly assembly = GeneratorHarness.Load(result.Output);
        Type calculator = assembly.GetType("Calc.Server.Calculator")!;

        // By type: the contract's dispatch cannot construct the class, and says what to do instead.
        await using (var server = new IpyRpcServer())
        {
            ArgumentException refused = Assert.Throws<ArgumentException>(() => server.Register(calculator));
            Assert.Contains("implements the contract ICalculator", refused.Message);
            Assert.Contains("Register(new Calculator(...))", refused.Message);
            Assert.Empty(server.Functions);
        }

        // From services: each call resolves the registered class (not the interface) from its scope.
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddScoped(services, calculator, _ =>
        {
            object c = Activator.CreateInstance(calculator)!;
            calculator.GetProperty("Offset")!.SetValue(c, 100);
            return c;
        });
        await using var provider = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        await using var resolving = new IpyRpcServer(new IpyRpcServerOptions { CallScopes = () =>
        {
            var scope = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.CreateAsyncScope(provider);
            return (scope.ServiceProvider, scope);
        } });
        resolving.RegisterFromServices(calculator);
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(resolving, new IpyRpcClientOptions { Output = (_, _) => { } });
        Assert.Equal(105, await client.CallAsync<int>("calc.add", 2, 3));
    }
}
