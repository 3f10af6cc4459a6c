using Microsoft.CodeAnalysis;
namespace IpyRpc.Generators.Tests;

public sealed class SnapshotTests
{
    [Fact]
    public void TheComputeExampleGeneratesTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute);
        Assert.Equal(["Demo.Compute.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs"], result.Sources.Keys.Order());
        foreach ((string hint, string source) in result.Sources)
        {
            Snapshot.Verify("Compute." + hint.Replace(".g.cs", ""), source);
        }
    }

    [Fact]
    public void NamespacesStreamsProgressAndEventsGenerateTheCommittedSources()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Streams);
        Assert.Equal(["Demo.Lab.IpyRpc.g.cs", "Demo.LabEvents.IpyRpc.g.cs", "IpyRpc.Formatters.g.cs"], result.Sources.Keys.Order());
        Assert.Empty(result.GeneratorDiagnostics.Where(d => d.Severity >= Microsoft.CodeAnalysis.DiagnosticSeverity.Warning));
        Assert.Empty(result.CompileDiagnostics);
        foreach ((string hint, string source) in result.Sources)
        {
            Snapshot.Verify("Streams." + hint.Replace(".g.cs", ""), source);
        }
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
        Assert.Contains("/// <exception cref=\"T:System.ArgumentException\">When the request is empty.</exception>", proxy);
        // The CancellationToken parameter is replaced by the proxy's own, with its own doc.
        Assert.DoesNotContain("<param name=\"ct\">", proxy);
        Assert.Contains("/// <param name=\"cancellationToken\">", proxy);
        Assert.Contains("public global::System.Threading.Tasks.Task<int> Add(int @a, int @b,", proxy);
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
        Assert.Contains("Summary = \"Adds two integers.\"", dispatch);
        Assert.Contains("Doc = \"The first addend.\"", dispatch);
        Assert.DoesNotContain(run.Diagnostics, d => d.Id == "IPYRPC0007" && d.GetMessage().Contains("Compute.Add"));
    }
}
