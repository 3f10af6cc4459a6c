using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace IpyRpc.Generators.Tests;

/// <summary>
/// The generator must do no work when nothing it reads changed: each tracked step's outputs stay
/// cached across unrelated edits and are recomputed only for relevant ones.
/// </summary>
public sealed class CachingTests
{
    private static readonly string[] TrackedSteps =
    [
        IpyRpcGenerator.Steps.Functions,
        IpyRpcGenerator.Steps.Contracts,
        IpyRpcGenerator.Steps.AllFunctions,
        IpyRpcGenerator.Steps.Services,
        IpyRpcGenerator.Steps.ConfigPatterns,
        IpyRpcGenerator.Steps.AssemblyKey,
        IpyRpcGenerator.Steps.FunctionSites,
        IpyRpcGenerator.Steps.ConfigSites,
    ];

    private static (GeneratorDriver Driver, CSharpCompilation Compilation) First()
    {
        CSharpCompilation compilation = GeneratorHarness.Compile(Sources.Compute, Sources.Config, "namespace Demo; public static class Unrelated { public static int X => 1; }", Sources.Contract);
        GeneratorDriver driver = GeneratorHarness.Driver().RunGenerators(compilation);
        return (driver, compilation);
    }

    private static Dictionary<string, IncrementalStepRunReason[]> Reasons(GeneratorDriver driver)
    {
        GeneratorRunResult run = driver.GetRunResult().Results.Single();
        return TrackedSteps.ToDictionary(
            step => step,
            step => run.TrackedSteps.TryGetValue(step, out var steps) ? [.. steps.SelectMany(s => s.Outputs).Select(o => o.Reason)] : Array.Empty<IncrementalStepRunReason>());
    }

    private static CSharpCompilation Replace(CSharpCompilation compilation, int index, string text)
    {
        SyntaxTree old = compilation.SyntaxTrees.ElementAt(index);
        return compilation.ReplaceSyntaxTree(old, CSharpSyntaxTree.ParseText(text, GeneratorHarness.ParseOptions, old.FilePath));
    }

    [Fact]
    public void RunningAgainOnTheSameCompilationIsAllCached()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = First();
        driver = driver.RunGenerators(compilation.Clone());
        foreach ((string step, IncrementalStepRunReason[] reasons) in Reasons(driver))
        {
            Assert.True(reasons.Length > 0, $"step {step} did not run");
            Assert.All(reasons, r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {r}"));
        }
    }

    [Fact]
    public void AnUnrelatedEditLeavesEveryStepCached()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = First();
        compilation = Replace(compilation, 2, "namespace Demo; public static class Unrelated { public static int X => 2; public static int Y => 3; }");
        driver = driver.RunGenerators(compilation);
        foreach ((string step, IncrementalStepRunReason[] reasons) in Reasons(driver))
        {
            Assert.All(reasons, r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {r}"));
        }
    }

    [Fact]
    public void MovingExportsAndPatternsWithoutChangingThemRegeneratesNothing()
    {
        // A comment above an exported class (and above a config pattern) moves every location after it:
        // only the diagnostics track sees that; the models the emitters read stay equal.
        (GeneratorDriver driver, CSharpCompilation compilation) = First();
        compilation = Replace(compilation, 0, "// A comment that moves everything below it.\n// And another line.\n" + Sources.Compute);
        compilation = Replace(compilation, 1, "// Moved down a line.\n" + Sources.Config);
        driver = driver.RunGenerators(compilation);
        Dictionary<string, IncrementalStepRunReason[]> reasons = Reasons(driver);
        foreach (string step in new[] { IpyRpcGenerator.Steps.AllFunctions, IpyRpcGenerator.Steps.Services, IpyRpcGenerator.Steps.ConfigPatterns, IpyRpcGenerator.Steps.AssemblyKey })
        {
            Assert.All(reasons[step], r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {r}"));
        }

        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.FunctionSites]);
        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.ConfigSites]);
    }

    [Fact]
    public void MovingAContractRegeneratesNothingAndEditingItsDocsRegeneratesOnlyIt()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = First();
        compilation = Replace(compilation, 3, "// A comment above the contract.\n" + Sources.Contract);
        driver = driver.RunGenerators(compilation);
        Dictionary<string, IncrementalStepRunReason[]> reasons = Reasons(driver);
        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.FunctionSites]);
        foreach (string step in new[] { IpyRpcGenerator.Steps.AllFunctions, IpyRpcGenerator.Steps.Services })
        {
            Assert.All(reasons[step], r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {r}"));
        }

        compilation = Replace(compilation, 3, Sources.Contract.Replace("Adds two integers.", "Adds two whole numbers."));
        driver = driver.RunGenerators(compilation);
        reasons = Reasons(driver);
        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.Services]);
        // Only the contract's service changed; the Compute service stays as it was.
        Assert.Contains(IncrementalStepRunReason.Unchanged, reasons[IpyRpcGenerator.Steps.Services]);
        string generated = driver.GetRunResult().Results.Single().GeneratedSources.Single(s => s.HintName == "Calc.Contracts.ICalculator.IpyRpc.g.cs").SourceText.ToString();
        Assert.Contains("Adds two whole numbers.", generated);
    }

    [Fact]
    public void ADuplicateNameIsReportedAtItsNewPlaceAfterAnEditAboveIt()
    {
        string twice = "namespace Demo; public static class Twice { [IpyRpc.IpyRpcExport(\"same\")] public static int A() => 1; [IpyRpc.IpyRpcExport(\"same\")] public static int B() => 2; }";
        CSharpCompilation compilation = GeneratorHarness.Compile(twice);
        GeneratorDriver driver = GeneratorHarness.Driver().RunGenerators(compilation);
        Diagnostic before = Assert.Single(driver.GetRunResult().Diagnostics, d => d.Id == "IPYRPC0003");
        compilation = Replace(compilation, 0, "// one line down\n" + twice);
        driver = driver.RunGenerators(compilation);
        Diagnostic after = Assert.Single(driver.GetRunResult().Diagnostics, d => d.Id == "IPYRPC0003");
        Assert.Equal(before.Location.GetLineSpan().StartLinePosition.Line + 1, after.Location.GetLineSpan().StartLinePosition.Line);
        Assert.Contains("Twice.B", after.GetMessage());
    }

    [Fact]
    public void EditingAnExportedMethodsDocsRegeneratesItsService()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = First();
        compilation = Replace(compilation, 0, Sources.Compute.Replace("Adds two integers.", "Adds two whole numbers."));
        driver = driver.RunGenerators(compilation);
        Dictionary<string, IncrementalStepRunReason[]> reasons = Reasons(driver);
        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.Functions]);
        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.Services]);
        Assert.All(reasons[IpyRpcGenerator.Steps.ConfigPatterns], r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged));
        string generated = driver.GetRunResult().Results.Single().GeneratedSources.Single(s => s.HintName == "Demo.Compute.IpyRpc.g.cs").SourceText.ToString();
        Assert.Contains("Adds two whole numbers.", generated);
    }

    [Fact]
    public void EditingAConfigPatternReRunsOnlyTheConfigStep()
    {
        (GeneratorDriver driver, CSharpCompilation compilation) = First();
        compilation = Replace(compilation, 1, Sources.Config.Replace("[\"*_jsno\"]", "[\"*_json2\"]"));
        driver = driver.RunGenerators(compilation);
        Dictionary<string, IncrementalStepRunReason[]> reasons = Reasons(driver);
        Assert.Contains(IncrementalStepRunReason.Modified, reasons[IpyRpcGenerator.Steps.ConfigPatterns]);
        Assert.All(reasons[IpyRpcGenerator.Steps.Services], r => Assert.True(r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, r.ToString()));
    }

    [Fact]
    public void ModelsHoldNoSymbolsOrSyntax()
    {
        (GeneratorDriver driver, _) = First();
        GeneratorRunResult run = driver.GetRunResult().Results.Single();
        foreach (string step in TrackedSteps)
        {
            foreach (IncrementalGeneratorRunStep s in run.TrackedSteps[step])
            {
                foreach ((object value, _) in s.Outputs)
                {
                    AssertNoRoslynObjects(value, step, 0);
                }
            }
        }
    }

    private static void AssertNoRoslynObjects(object? value, string path, int depth)
    {
        if (value is null || depth > 12 || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum) return;
        Assert.False(value is ISymbol or SyntaxNode or SemanticModel or Compilation or Location, $"{path} holds a {value.GetType().Name}");
        if (value is System.Collections.IEnumerable items)
        {
            foreach (object? item in items) AssertNoRoslynObjects(item, path + "[]", depth + 1);
            return;
        }

        foreach (System.Reflection.PropertyInfo p in value.GetType().GetProperties().Where(p => p.GetIndexParameters().Length == 0 && p.Name != "EqualityContract"))
        {
            AssertNoRoslynObjects(p.GetValue(value), path + "." + p.Name, depth + 1);
        }
    }
}
