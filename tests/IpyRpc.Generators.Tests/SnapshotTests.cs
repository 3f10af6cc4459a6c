using Microsoft.CodeAnalysis;
namespace IpyRpc.Generators.Tests;

public sealed class SnapshotTests
{
    [Fact]
    public void TheComputeExampleGeneratesTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute);
        Assert.Equal(["Demo.Compute.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs", "IpyRpc.Schemas.g.cs"], result.Sources.Keys.Order());
        foreach ((string hint, string source) in result.Sources)
        {
            Snapshot.Verify("Compute." + hint.Replace(".g.cs", ""), source);
        }
    }

    [Fact]
    public void NamespacesStreamsProgressAndEventsGenerateTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Streams);
        Assert.Equal(["Demo.Lab.IpyRpc.g.cs", "Demo.LabEvents.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs", "IpyRpc.Schemas.g.cs"], result.Sources.Keys.Order());
        Assert.Empty(result.GeneratorDiagnostics.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        Assert.Empty(result.CompileDiagnostics);
        foreach ((string hint, string source) in result.Sources)
        {
            Snapshot.Verify("Streams." + hint.Replace(".g.cs", ""), source);
        }
    }

    [Fact]
    public void InstanceServicesGenerateTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run("""
            using System.Threading;
            using System.Threading.Tasks;
            using IpyRpc;
            namespace Demo;

            /// <summary>A counter kept per service instance (registered, or resolved from each call's services).</summary>
            public sealed class Counter
            {
                private int _count;

                /// <summary>Creates a counter starting at <paramref name="start"/>.</summary>
                /// <param name="start">The first value.</param>
                public Counter(int start) => _count = start;

                /// <summary>Adds to the count.</summary>
                /// <param name="by">How much.</param>
                /// <param name="caller">Who called (filled by the call, not sent).</param>
                /// <param name="cancellationToken">The call's token (filled by the call, not sent).</param>
                /// <returns>The new count.</returns>
                [IpyRpcExport("counter.add")]
                public async Task<int> Add(int by, IpyRpcConnection caller, CancellationToken cancellationToken)
                {
                    await Task.Yield();
                    return Interlocked.Add(ref _count, by);
                }

                /// <summary>Resets the count.</summary>
                [IpyRpcExport("counter.reset")]
                public void Reset() => _count = 0;
            }
            """);
        Assert.Empty(result.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(result.CompileDiagnostics);
        Snapshot.Verify("Instance.Demo.Counter.IpyRpc", result.Sources["Demo.Counter.IpyRpc.g.cs"]);
    }

    [Fact]
    public void AContractInterfaceGeneratesTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Contract);
        Assert.Empty(result.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(result.CompileDiagnostics);
        Assert.Equal(["Calc.Contracts.ICalculator.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs", "IpyRpc.Schemas.g.cs"], result.Sources.Keys.Order());
        Snapshot.Verify("Contract.Calc.Contracts.ICalculator.IpyRpc", result.Sources["Calc.Contracts.ICalculator.IpyRpc.g.cs"]);
        Snapshot.Verify("Contract.IpyRpc.Formatters", result.Sources["IpyRpc.Formatters.g.cs"]);
    }

    [Fact]
    public void DataShapesGeneratePointerMembersInTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run("""
            using System.Collections.Generic;
            using System.Numerics.Tensors;
            using IpyRpc;
            namespace Demo;

            /// <summary>Functions over large values: arrays, tensors, data frames, lists.</summary>
            public static class Data
            {
                /// <summary>A matrix.</summary>
                /// <param name="rows">Rows.</param>
                [IpyRpcExport("data.matrix")] public static double[,] Matrix(int rows) => new double[rows, 2];

                /// <summary>The first rows of a matrix.</summary>
                /// <param name="m">The matrix.</param>
                /// <param name="rows">How many rows.</param>
                [IpyRpcExport("data.head")] public static double[,] Head(double[,] m, int rows) => m;

                /// <summary>A tensor's sum.</summary>
                /// <param name="t">The tensor.</param>
                [IpyRpcExport("data.total")] public static double Total(Tensor<float> t) => 0;

                /// <summary>A data frame's row count.</summary>
                /// <param name="frame">The frame.</param>
                /// <param name="labels">Labels.</param>
                [IpyRpcExport("data.rows")] public static int Rows(DataFrame frame, List<string> labels) => frame.RowCount;
            }
            """);
        Assert.Empty(result.GeneratorDiagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        Assert.Empty(result.CompileDiagnostics);
        Snapshot.Verify("Data.Demo.Data.IpyRpc", result.Sources["Demo.Data.IpyRpc.g.cs"]);
    }

    [Fact]
    public void EveryDiagnosticReadsAsCommitted()
    {
        // One source that draws every diagnostic the generator reports from user code (IPYRPC0006 is a
        // generator failure, reported only when the generator itself breaks).
        // Two schema files beside it: one is not JSON (IPYRPC0012), one has a method and an event whose shapes are unknown (IPYRPC0013, IPYRPC0014).
        GeneratorHarness.Result result = GeneratorHarness.RunWithSchemas(
            [
                new("/project/Broken.ipyrpc.json", "{\n  \"openrpc\": \"1.3.2\",\n  \"methods\": [,]\n}"),
                new("/project/Odd.ipyrpc.json", """
                    {"openrpc": "1.3.2", "x-ipyrpc-schema": 1, "methods": [
                      {"name": "odd", "params": [{"name": "x", "schema": {"type": "integer"}}], "result": {"name": "result", "schema": {"type": "null"}}}
                    ], "x-ipyrpc-events": [{"name": "odd.happened", "schema": {"type": "integer"}}]}
                    """),
            ],
            """
            using System.IO;
            using IpyRpc;
            namespace Demo;

            /// <summary>Everything wrong at once.</summary>
            public static class Wrong
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static int TakesStream(Stream s) => 1;                  // IPYRPC0001

                /// <summary>x</summary>
                [IpyRpcExport] public static Stream ReturnsStream() => Stream.Null;           // IPYRPC0002

                /// <summary>x</summary>
                [IpyRpcExport("twice")] public static int First() => 1;

                /// <summary>x</summary>
                [IpyRpcExport("twice")] public static int Second() => 2;                      // IPYRPC0003

                /// <summary>x</summary>
                [IpyRpcExport] public static void ByRef(ref int x) { }                        // IPYRPC0004

                /// <summary>x</summary>
                [IpyRpcExport] private static int Hidden() => 1;                              // IPYRPC0005

                [IpyRpcExport] public static int Undocumented() => 1;                         // IPYRPC0007

                /// <summary>x</summary>
                [IpyRpcExport("rpc.discover")] public static int Reserved() => 1;            // IPYRPC0009

                [IpyRpcEvent] public static int NotAnEvent;                                    // IPYRPC0011

                /// <summary>The config.</summary>
                public static GlobConfig Config() => new() { ["nothing_*"] = new(), ["[unclosed"] = new() };   // IPYRPC0008, IPYRPC0010
            }
            """);
        string report = string.Join("\n", result.GeneratorDiagnostics
            .OrderBy(d => d.Id, StringComparer.Ordinal).ThenBy(d => d.Location.SourceSpan.Start)
            .Select(d => $"// {d.Id} {d.Severity} at {System.IO.Path.GetFileName(d.Location.GetLineSpan().Path)}:{d.Location.GetLineSpan().StartLinePosition.Line + 1}:{d.Location.GetLineSpan().StartLinePosition.Character + 1}: {d.GetMessage()}")) + "\n";
        string[] ids = [.. result.GeneratorDiagnostics.Select(d => d.Id).Distinct().Order()];
        Assert.Equal(["IPYRPC0001", "IPYRPC0002", "IPYRPC0003", "IPYRPC0004", "IPYRPC0005", "IPYRPC0007", "IPYRPC0008", "IPYRPC0009", "IPYRPC0010", "IPYRPC0011", "IPYRPC0012", "IPYRPC0013", "IPYRPC0014"], ids);
        Assert.Empty(result.CompileDiagnostics); // what the generator refuses never becomes a compiler error in generated code
        Snapshot.Verify("Diagnostics.report", report);
    }

    [Fact]
    public void ConfigBindingsListTheFunctionsEachPatternSelects()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute, Sources.Config);
        Snapshot.Verify("Config.IpyRpc.ConfigBindings", result.Sources["IpyRpc.ConfigBindings.g.cs"]);
    }

    [Fact]
    public void TheProxyCarriesTheMethodsXmlDocs()
    {
        string dispatch = GeneratorHarness.Run(Sources.Compute).Sources["Demo.Compute.IpyRpc.g.cs"];
        string proxy = dispatch[dispatch.IndexOf("public sealed partial class ComputeClient", StringComparison.Ordinal)..];
        Assert.Contains("/// <summary>Adds two integers.</summary>", proxy);
        Assert.Contains("/// <param name=\"a\">The first addend.</param>", proxy);
        Assert.Contains("/// <returns>The sum.</returns>", proxy);
        Assert.Contains("/// <remarks>Takes a while for large inputs.</remarks>", proxy);
        // What the function throws reaches the caller as a RemoteException, and the proxy's docs say so.
        Assert.Contains("/// <exception cref=\"__IpyRpc.RemoteException\">The remote function threw <c>ArgumentException</c> (the exception's <c>RemoteType</c>): When the request is empty.</exception>", proxy);
        // The CancellationToken parameter is replaced by the proxy's own, with its own doc.
        Assert.DoesNotContain("<param name=\"ct\">", proxy);
        Assert.Contains("/// <param name=\"cancellationToken\">", proxy);
        Assert.Contains("public __Tasks.Task<int> Add(int a, int b,", proxy);
    }

    [Fact]
    public void DocsAreReadEvenWithoutGenerateDocumentationFile()
    {
        var options = GeneratorHarness.ParseOptions.WithDocumentationMode(Microsoft.CodeAnalysis.DocumentationMode.None);
        var compilation = Microsoft.CodeAnalysis.CSharp.CSharpCompilation.Create("NoDocs",
            [Microsoft.CodeAnalysis.CSharp.CSharpSyntaxTree.ParseText(Sources.Compute, options)],
            GeneratorHarness.Compile().References,
            new Microsoft.CodeAnalysis.CSharp.CSharpCompilationOptions(Microsoft.CodeAnalysis.OutputKind.DynamicallyLinkedLibrary));
        Microsoft.CodeAnalysis.GeneratorDriver driver = Microsoft.CodeAnalysis.CSharp.CSharpGeneratorDriver.Create([new IpyRpcGenerator().AsSourceGenerator()], parseOptions: options)
            .RunGenerators(compilation);
        Microsoft.CodeAnalysis.GeneratorRunResult run = driver.GetRunResult().Results.Single();
        string dispatch = run.GeneratedSources.Single(s => s.HintName == "Demo.Compute.IpyRpc.g.cs").SourceText.ToString();
        Assert.Contains("new(\"add\", \"Adds two integers.\"", dispatch);
        Assert.Contains(", \"The first addend.\")", dispatch);
        Assert.DoesNotContain(run.Diagnostics, d => d.Id == "IPYRPC0007" && d.GetMessage().Contains("Compute.Add"));
    }
}
