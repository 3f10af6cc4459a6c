using System.Collections.Immutable;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace IpyRpc.Generators.Tests;

/// <summary>
/// Every C# block in README.md and docs/*.md marked <c>&lt;!-- ipyrpc:compile --&gt;</c> is a whole
/// program: it is compiled here, with the generator, against the runtime, so the docs cannot rot.
/// </summary>
public sealed partial class DocsCompileTests
{
    [GeneratedRegex(@"<!-- ipyrpc:compile -->\s*```csharp\n(?<code>.*?)```", RegexOptions.Singleline)]
    private static partial Regex MarkedBlock();

    public static TheoryData<string, int> Blocks()
    {
        var data = new TheoryData<string, int>();
        string root = RepositoryRoot();
        foreach (string file in new[] { Path.Combine(root, "README.md") }.Concat(Directory.GetFiles(Path.Combine(root, "docs"), "*.md")))
        {
            int count = MarkedBlock().Matches(File.ReadAllText(file)).Count;
            for (int i = 0; i < count; i++) data.Add(Path.GetRelativePath(root, file), i);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void TheMarkedProgramCompiles(string file, int index)
    {
        string code = MarkedBlock().Matches(File.ReadAllText(Path.Combine(RepositoryRoot(), file)))[index].Groups["code"].Value;
        string[] platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        MetadataReference[] references =
        [
            .. platform.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)),
            MetadataReference.CreateFromFile(typeof(IpyRpcServer).Assembly.Location),
            MetadataReference.CreateFromFile(typeof(IpyRpc.Http.IpyRpcHttpServer).Assembly.Location),
            MetadataReference.CreateFromFile(typeof(IpyRpc.ZeroMq.IpyRpcZeroMqServer).Assembly.Location),
        ];
        string globalUsings = "global using System; global using System.Collections.Generic; global using System.Linq; global using System.Threading; global using System.Threading.Tasks;";
        CSharpCompilation compilation = CSharpCompilation.Create(
            "DocProgram",
            [CSharpSyntaxTree.ParseText(code, GeneratorHarness.ParseOptions, path: file), CSharpSyntaxTree.ParseText(globalUsings, GeneratorHarness.ParseOptions, path: "Usings.cs")],
            references,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        GeneratorHarness.Driver().RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> generatorDiagnostics);
        Diagnostic[] errors = [.. generatorDiagnostics.Concat(output.GetDiagnostics()).Where(d => d.Severity == DiagnosticSeverity.Error)];
        Assert.True(errors.Length == 0, $"{file}, block {index + 1}:\n" + string.Join("\n", errors.Select(e => e.ToString())));
    }

    [Fact]
    public void TheReadmeHasAProgramToCompile() => Assert.Contains(Blocks(), row => (string)row[0] == "README.md");

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "IpyRpc.Generators.sln"))) return d.FullName;
        }

        throw new InvalidOperationException("The repository root (with IpyRpc.Generators.sln) is not above " + AppContext.BaseDirectory);
    }
}
