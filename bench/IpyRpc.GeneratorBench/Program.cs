using System.Collections.Immutable;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using IpyRpc.Generators;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

// dotnet run -c Release --project bench/IpyRpc.GeneratorBench [-- --smoke] [--classes N] [--methods N] [--dump DIR]
// (--dump: write the generated files to DIR, to see where the size goes)
// A generated project of 500 exported methods in 20 classes (records, enums, defaults, docs), compiled
// in memory without the generator and with it: the generated code's size against the hand-written
// source, and the generator's own time (cold, then the median of warm runs), beside their targets.
bool smoke = args.Contains("--smoke");
int classes = Number("--classes", smoke ? 4 : 20), methods = Number("--methods", smoke ? 5 : 25), warmRuns = smoke ? 2 : 9;

string[] sources = [.. Enumerable.Range(0, classes).Select(c => Service(c, methods))];
long sourceBytes = sources.Sum(s => (long)Encoding.UTF8.GetByteCount(s));
long sourceLines = sources.Sum(Lines);
Console.WriteLine($"IpyRpc generator benchmark: {classes * methods} exported methods in {classes} classes, {sourceLines:N0} lines ({sourceBytes:N0} bytes) of source");

ImmutableArray<MetadataReference> references = [.. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
    .Where(File.Exists).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)), MetadataReference.CreateFromFile(typeof(IpyRpc.IpyRpcServer).Assembly.Location)];
var parse = new CSharpParseOptions(LanguageVersion.Latest, DocumentationMode.Parse);
CSharpCompilation Compilation() => CSharpCompilation.Create("Big", sources.Select((s, i) => CSharpSyntaxTree.ParseText(s, parse, path: $"Service{i}.cs")), references,
    new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

// Without the generator: the project's own compile (parse, bind, emit).
double withoutMs = Median(Enumerable.Range(0, warmRuns + 1).Select(_ => Time(() => Emit(Compilation()))).Skip(1));

// With it: the generator's time as Roslyn's driver reports it (cold first, then warm), and the output.
var timings = new List<double>();
GeneratorDriverRunResult? run = null;
Compilation? output = null;
for (int i = 0; i <= warmRuns; i++)
{
    // Each run starts with the harness's own garbage (the previous runs' compilations) collected, as BenchmarkDotNet
    // does between iterations, so the driver's time is the generator's work and the collections it causes itself.
    CSharpCompilation input = Compilation();
    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    GeneratorDriver driver = CSharpGeneratorDriver.Create([new IpyRpcGenerator().AsSourceGenerator()], parseOptions: parse);
    driver = driver.RunGeneratorsAndUpdateCompilation(input, out output, out _);
    timings.Add(driver.GetTimingInfo().ElapsedTime.TotalMilliseconds);
    run = driver.GetRunResult();
}

double coldMs = timings[0], warmMs = Median(timings.Skip(1));
double withMs = Median(Enumerable.Range(0, 3).Select(_ => Time(() => Emit(output!))));
string[] generated = [.. run!.Results.SelectMany(r => r.GeneratedSources).Select(s => s.SourceText.ToString())];
long generatedBytes = generated.Sum(s => (long)Encoding.UTF8.GetByteCount(s)), generatedLines = generated.Sum(Lines);
int errors = output!.GetDiagnostics().Count(d => d.Severity == DiagnosticSeverity.Error);
int dumpAt = Array.IndexOf(args, "--dump");
if (dumpAt >= 0 && dumpAt + 1 < args.Length)
{
    Directory.CreateDirectory(args[dumpAt + 1]);
    foreach (GeneratedSourceResult g in run.Results.SelectMany(r => r.GeneratedSources)) File.WriteAllText(Path.Combine(args[dumpAt + 1], g.HintName), g.SourceText.ToString());
}

double ratio = (double)generatedBytes / sourceBytes;

Console.WriteLine();
Console.WriteLine("| measure | value | target | met |");
Console.WriteLine("| --- | ---: | --- | --- |");
Console.WriteLine($"| generated code | {generatedLines:N0} lines, {generatedBytes:N0} bytes in {generated.Length} files | | |");
Console.WriteLine($"| generated / hand-written (bytes) | {ratio:0.00}× | <= 4× | {(ratio <= 4 ? "yes" : "**no**")} |");
Console.WriteLine($"| generator time, warm (median of {warmRuns}) | {warmMs / 1000:0.000} s | <= 0.3 s | {(warmMs <= 300 ? "yes" : "**no**")} |");
Console.WriteLine($"| generator time, cold (first run in the process) | {coldMs / 1000:0.000} s | | |");
Console.WriteLine($"| compile without the generator (parse, bind, emit) | {withoutMs / 1000:0.000} s | | |");
Console.WriteLine($"| compile of the project with the generated code | {withMs / 1000:0.000} s ({withMs / withoutMs:0.0}×) | | |");
Console.WriteLine($"| compiler errors in the generated project | {errors} | 0 | {(errors == 0 ? "yes" : "**no**")} |");
return errors == 0 ? 0 : 1;

int Number(string name, int fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

static long Lines(string text) => text.Count(c => c == '\n');

static double Time(Action action)
{
    long start = Stopwatch.GetTimestamp();
    action();
    return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}

static double Median(IEnumerable<double> values)
{
    double[] sorted = [.. values.Order()];
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
}

static void Emit(Compilation compilation)
{
    using var stream = new MemoryStream();
    compilation.Emit(stream);
}

// One class of exported methods, as a user writes them: docs, records, an enum, defaults, tasks.
static string Service(int c, int methods)
{
    var s = new StringBuilder();
    s.AppendLine("using System.Threading;\nusing System.Threading.Tasks;\nusing IpyRpc;\n");
    s.AppendLine($"namespace Big.Area{c};\n");
    s.AppendLine($"/// <summary>How urgent a request of area {c} is.</summary>\npublic enum Priority{c} {{ Low, Normal, High }}\n");
    s.AppendLine($"/// <summary>A request of area {c}.</summary>\n/// <param name=\"Name\">Its name.</param>\n/// <param name=\"Count\">How many.</param>\n/// <param name=\"Weights\">The weights.</param>\n/// <param name=\"Priority\">How urgent.</param>\npublic sealed record Request{c}(string Name, int Count, double[] Weights, Priority{c} Priority);\n");
    s.AppendLine($"/// <summary>A report of area {c}.</summary>\n/// <param name=\"Total\">The total.</param>\n/// <param name=\"Notes\">Notes.</param>\npublic sealed record Report{c}(double Total, System.Collections.Generic.List<string> Notes);\n");
    s.AppendLine($"/// <summary>The functions of area {c}.</summary>\npublic static class Service{c}\n{{");
    for (int m = 0; m < methods; m++)
    {
        s.AppendLine($"    /// <summary>Operation {m} of area {c}: combines the request with a factor.</summary>");
        s.AppendLine($"    /// <remarks>Long-running for large counts; prints what it does.</remarks>");
        s.AppendLine("    /// <param name=\"request\">The request.</param>\n    /// <param name=\"factor\">The factor.</param>\n    /// <param name=\"label\">A label for the report.</param>");
        switch (m % 4)
        {
            case 0:
                s.AppendLine("    /// <returns>The report.</returns>");
                s.AppendLine($"    [IpyRpcExport(\"area{c}.op{m}\")]\n    public static Report{c} Op{m}(Request{c} request, double factor = 1.5, string? label = null) => new(request.Count * factor, [label ?? request.Name]);");
                break;
            case 1:
                s.AppendLine("    /// <param name=\"cancellationToken\">Cancels the work.</param>\n    /// <returns>The total.</returns>");
                s.AppendLine($"    [IpyRpcExport(\"area{c}.op{m}\")]\n    public static async Task<double> Op{m}(Request{c} request, double factor, string label, CancellationToken cancellationToken) {{ await Task.Yield(); return request.Count * factor; }}");
                break;
            case 2:
                s.AppendLine("    /// <returns>The weights, scaled.</returns>");
                s.AppendLine($"    [IpyRpcExport(\"area{c}.op{m}\")]\n    public static double[] Op{m}(Request{c} request, double factor, Priority{c} label = Priority{c}.Normal) => request.Weights;");
                break;
            default:
                s.AppendLine("    /// <returns>A summary.</returns>");
                s.AppendLine($"    [IpyRpcExport(\"area{c}.op{m}\")]\n    public static string Op{m}(Request{c} request, int factor, string label = \"none\") => label + request.Name;");
                break;
        }
    }

    s.AppendLine("}");
    return s.ToString();
}
