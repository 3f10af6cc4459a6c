using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.CompilerServices;
using IpyRpc.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace IpyRpc.Generators.Tests;

/// <summary>Compiles inline sources against the runtime, runs the generator, and reports what came out.</summary>
internal static class GeneratorHarness
{
    private static readonly ImmutableArray<MetadataReference> References = LoadReferences();

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest, DocumentationMode.Diagnose);

    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        string[] platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return [.. platform.Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)),
            MetadataReference.CreateFromFile(typeof(IpyRpc.IpyRpcServer).Assembly.Location)];
    }

    public static CSharpCompilation Compile(params string[] sources) => CSharpCompilation.Create(
        "Demo.Assembly",
        sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, ParseOptions, path: $"Source{i}.cs")),
        References,
        new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));

    public static GeneratorDriver Driver(IEnumerable<SchemaFile>? schemas = null, string? rootNamespace = null) => CSharpGeneratorDriver.Create(
        [new IpyRpcGenerator().AsSourceGenerator()],
        additionalTexts: [.. (schemas ?? []).Select(s => (AdditionalText)s)],
        parseOptions: ParseOptions,
        optionsProvider: new Options(schemas ?? [], rootNamespace),
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>A schema file as the project would add it: its text and the optional IpyRpcNamespace/IpyRpcClient metadata.</summary>
    public sealed class SchemaFile(string path, string text, string? ns = null, string? client = null) : AdditionalText
    {
        public override string Path => path;

        public string? Namespace => ns;

        public string? Client => client;

        public override Microsoft.CodeAnalysis.Text.SourceText GetText(CancellationToken cancellationToken = default) => Microsoft.CodeAnalysis.Text.SourceText.From(text);
    }

    private sealed class Options(IEnumerable<SchemaFile> schemas, string? rootNamespace) : Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptionsProvider
    {
        private readonly Dictionary<string, SchemaFile> _files = schemas.ToDictionary(s => s.Path);

        public override Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions GlobalOptions => new Values(rootNamespace is null ? [] : [("build_property.RootNamespace", rootNamespace)]);

        public override Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions GetOptions(SyntaxTree tree) => new Values([]);

        public override Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions GetOptions(AdditionalText textFile)
            => _files.TryGetValue(textFile.Path, out SchemaFile? f)
                ? new Values([.. f.Namespace is null ? [] : new[] { ("build_metadata.AdditionalFiles.IpyRpcNamespace", f.Namespace) },
                    .. f.Client is null ? [] : new[] { ("build_metadata.AdditionalFiles.IpyRpcClient", f.Client) }])
                : new Values([]);
    }

    private sealed class Values((string Key, string Value)[] values) : Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions
    {
        public override bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out string? value)
        {
            value = values.FirstOrDefault(v => v.Key == key).Value;
            return value is not null;
        }
    }

    public sealed record Result(Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, ImmutableArray<Diagnostic> CompileDiagnostics, IReadOnlyDictionary<string, string> Sources, GeneratorDriver Driver);

    public static Result Run(params string[] sources) => RunWithSchemas([], sources);

    /// <summary>Runs the generator over <paramref name="sources"/> with schema files added as AdditionalFiles (root namespace <c>Demo</c>).</summary>
    public static Result RunWithSchemas(IEnumerable<SchemaFile> schemas, params string[] sources)
    {
        CSharpCompilation compilation = Compile(sources);
        GeneratorDriver driver = Driver(schemas, "Demo").RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        GeneratorDriverRunResult run = driver.GetRunResult();
        var generated = run.Results.SelectMany(r => r.GeneratedSources).ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        // Only what the generated trees cause: the inline test sources need not be warning-free.
        ImmutableArray<Diagnostic> compile = output.GetDiagnostics()
            .Where(d => d.Severity >= DiagnosticSeverity.Warning && d.Location.SourceTree?.FilePath.Contains("IpyRpc.Generators") == true)
            .ToImmutableArray();
        return new Result(output, diagnostics, compile, generated, driver);
    }

    /// <summary>Emits the compilation and loads it, running its module initializers (which register the generated functions).</summary>
    public static Assembly Load(Compilation compilation)
    {
        using var stream = new MemoryStream();
        Microsoft.CodeAnalysis.Emit.EmitResult emit = compilation.Emit(stream);
        Assert.True(emit.Success, string.Join(Environment.NewLine, emit.Diagnostics));
        // A context of its own each time: every compilation is named Demo.Assembly; IpyRpc itself still comes from the default context.
        Assembly assembly = new System.Runtime.Loader.AssemblyLoadContext(null).LoadFromStream(new MemoryStream(stream.ToArray()));
        RuntimeHelpers.RunModuleConstructor(assembly.ManifestModule.ModuleHandle);
        return assembly;
    }
}
