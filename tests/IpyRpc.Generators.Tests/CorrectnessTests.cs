using System.Reflection;
using IpyRpc;
using IpyRpc.Protocol;
using Microsoft.CodeAnalysis;

namespace IpyRpc.Generators.Tests;

/// <summary>
/// Everything the generator accepts compiles; everything it refuses is one diagnostic, never a
/// compiler error inside generated code. Each case was found by using the generator in a new app.
/// </summary>
public sealed class CorrectnessTests
{
    private static GeneratorHarness.Result Run(string body) => GeneratorHarness.Run($$"""
        using System;
        using System.Collections.Generic;
        using System.Threading;
        using System.Threading.Tasks;
        using IpyRpc;
        namespace Demo;
        {{body}}
        """);

    // Errors anywhere in the compilation, the generated files included (the harness's CompileDiagnostics keep warnings of generated files only).
    private static Diagnostic[] Errors(GeneratorHarness.Result r)
        => [.. r.GeneratorDiagnostics.Concat(r.Output.GetDiagnostics()).Where(d => d.Severity == DiagnosticSeverity.Error)];

    [Fact]
    public void ParametersNamedLikeTheProxysOwnStillCompile()
    {
        GeneratorHarness.Result r = Run("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static int Odd(int options, int callOptions, int cancellationToken, int callCancellationToken) => options;
            }
            """);
        Assert.Empty(Errors(r));
        Assert.Contains("__IpyRpc.CallOptions? callOptions2 = null", r.Sources["Demo.F.IpyRpc.g.cs"]);
    }

    [Fact]
    public void ANameExportedTwiceIsOneDiagnosticAndNoCompilerError()
    {
        GeneratorHarness.Result r = Run("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport("same")] public static int A() => 1;
                /// <summary>x</summary>
                [IpyRpcExport("same")] public static int B() => 2;
            }
            """);
        Diagnostic[] errors = Errors(r);
        Assert.Equal(["IPYRPC0003"], errors.Select(e => e.Id));
    }

    [Fact]
    public void OverloadsExportedUnderTwoNamesGetTwoProxyMethods()
    {
        GeneratorHarness.Result r = Run("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport("scale_int")] public static int Scale(int x) => x * 2;
                /// <summary>x</summary>
                [IpyRpcExport("scale_long")] public static long Scale(long x) => x * 2;
                /// <summary>x</summary>
                [IpyRpcExport("peer")] public static int Peer() => 0;
            }
            """);
        Assert.Empty(Errors(r));
        string proxy = r.Sources["Demo.F.IpyRpc.g.cs"];
        Assert.Contains(" ScaleIntRemote(int x,", proxy);
        Assert.Contains(" ScaleLongRemote(long x,", proxy);
        Assert.Contains(" PeerRemote(", proxy); // not a second member named Peer
    }

    [Fact]
    public void NamesOfTheFilesOwnNamespaceAreShortUnlessAGeneratedTypeHasThem()
    {
        // "math.add" makes a nested class MathNamespace, and the dispatch class has a member named Register: user types
        // of those names in the same namespace stay fully qualified; others are written short. Literals are left alone.
        GeneratorHarness.Result r = Run("""
            public sealed record MathNamespace(int A);
            public sealed record Register(string Name);
            public sealed record Report(double Total);
            public enum Mode { Fast = 1, Exact = 2 }

            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport("math.add")] public static Report Add(MathNamespace m, Register r, Mode mode = Mode.Exact, string note = "global::Demo.Report") => new(m.A);
                /// <summary>x</summary>
                [IpyRpcExport("math.report")] public static Report Report(Report report) => report;
            }
            """);
        Assert.Empty(Errors(r));
        string source = r.Sources["Demo.F.IpyRpc.g.cs"];
        Assert.Contains("global::Demo.MathNamespace", source);
        Assert.Contains("global::Demo.Register", source);
        Assert.Contains("__IpyRpc.ValueOrPointer<Report> report", source);
        Assert.Contains("Mode mode = (Mode)2", source);
        Assert.Contains("\"global::Demo.Report\"", source);
        Assert.DoesNotContain("global::Demo.Report)", source);
    }

    [Fact]
    public void AGenericMethodIsOneDiagnostic()
    {
        GeneratorHarness.Result r = Run("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static T Echo<T>(T value, List<T> more) => value;
            }
            """);
        Diagnostic only = Assert.Single(r.GeneratorDiagnostics);
        Assert.Equal("IPYRPC0004", only.Id);
        Assert.Contains("generic methods cannot be called remotely", only.GetMessage());
    }

    [Fact]
    public void ConfigPatternsInAnAssemblyWithoutExportsAreNotReportedAsMatchingNothing()
    {
        GeneratorHarness.Result r = GeneratorHarness.Run("""
            using IpyRpc;
            namespace Host;
            public static class Setup
            {
                public static GlobConfig Config => new() { ["math.*"] = new() { Timeout = System.TimeSpan.FromSeconds(1) } };
            }
            """);
        Assert.DoesNotContain(r.GeneratorDiagnostics, d => d.Id == "IPYRPC0008");

        // With exports of its own, the same pattern is checked against them.
        GeneratorHarness.Result own = GeneratorHarness.Run("""
            using IpyRpc;
            namespace Host;
            public static class Setup
            {
                public static GlobConfig Config => new() { ["math.*"] = new() { Timeout = System.TimeSpan.FromSeconds(1) } };

                /// <summary>x</summary>
                [IpyRpcExport("other")] public static int Other() => 1;
            }
            """);
        Assert.Contains(own.GeneratorDiagnostics, d => d.Id == "IPYRPC0008" && d.GetMessage().Contains("other"));
    }

    [Fact]
    public async Task EnumDefaultsReadAsMembersAndAMissingRecordMemberIsInvalidArguments()
    {
        GeneratorHarness.Result r = Run("""
            public enum Color { Red, Green, Blue }
            public sealed record Point(int X, int Y, string? Label = null);
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport("paint")] public static string Paint(Color color = Color.Green) => color.ToString();
                /// <summary>x</summary>
                [IpyRpcExport("norm")] public static int Norm(Point p) => Math.Abs(p.X) + Math.Abs(p.Y);
            }
            """);
        Assert.Empty(Errors(r));
        Assembly assembly = GeneratorHarness.Load(r.Output.WithAssemblyName("Demo.Correctness")); // another name than the other tests' loaded assemblies
        await using var server = new IpyRpcServer();
        server.Register(assembly.GetType("Demo.F")!);
        await using IpyRpcClient client = await IpyRpcClient.ConnectInProcessAsync(server, new IpyRpcClientOptions { Output = (_, _) => { } });

        Assert.Equal("Color.Green", client.Describe("paint").Parameters[0].DefaultValue);
        Assert.Equal("Green", await client.CallAsync<string>("paint"));
        Assert.Equal(7, await client.CallNamedAsync<int>("norm", new Dictionary<string, object?> { ["p"] = new Dictionary<string, object?> { ["x"] = 3, ["y"] = -4 } }));
        var e = await Assert.ThrowsAnyAsync<IpyRpcException>(() => client.CallNamedAsync<int>("norm", new Dictionary<string, object?> { ["p"] = new Dictionary<string, object?> { ["x"] = 3 } }));
        Assert.Equal(ErrorCodes.InvalidArguments, e.Code);
        Assert.Contains("missing its member 'y'", e.Message);
    }

    [Fact]
    public void EachFunctionIsOneProxyMethodRecordsTakeAPointerInPlaceAndCollectionsGetAnOverload()
    {
        GeneratorHarness.Result r = Run("""
            public sealed record Shape(double Width, double Height);

            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static Task<double[]> LoadAsync(int n) => Task.FromResult(new double[n]);
                /// <summary>x</summary>
                [IpyRpcExport] public static double Area(Shape shape, double scale = 1) => shape.Width * shape.Height * scale;
                /// <summary>x</summary>
                [IpyRpcExport] public static double Sum(double[] values, Shape? shape = null) => values.Length;
                /// <summary>x</summary>
                [IpyRpcExport] public static void Store(List<int> items) { }
                /// <summary>x</summary>
                [IpyRpcExport] public static async IAsyncEnumerable<int> Walk(int[] steps, IProgress<int> progress) { await Task.Yield(); yield return steps.Length; }
            }
            """);
        Assert.Empty(Errors(r));
        string proxy = r.Sources["Demo.F.IpyRpc.g.cs"];
        // Submitting and pointers are the peer's (client.SubmitAsync(() => proxy.F(x))), not a method per function.
        Assert.DoesNotContain(" SubmitLoadAsync(", proxy);
        Assert.DoesNotContain(" LoadAsPointerAsync(", proxy);
        Assert.Contains(" LoadAsync(int n, ", proxy);
        Assert.Contains(" Area(__IpyRpc.ValueOrPointer<Shape> shape, double scale = 1D, ", proxy);
        // A collection keeps its type (a collection expression can be passed); a pointer to one goes to the overload.
        Assert.Contains(" Sum(double[] values, __IpyRpc.ValueOrPointer<Shape?> shape = default, ", proxy);
        Assert.Contains(" Sum(__IpyRpc.RemotePointer<double[]> values, __IpyRpc.ValueOrPointer<Shape?> shape = default, ", proxy);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(proxy, @" Area\("));
        // So do functions that return nothing and streams, with their progress.
        Assert.Contains("__Tasks.Task Store(__IpyRpc.RemotePointer<global::System.Collections.Generic.List<int>> items, ", proxy);
        Assert.Contains(" Walk(__IpyRpc.RemotePointer<int[]> steps, global::System.IProgress<int>? progress = null, ", proxy);
    }
}
