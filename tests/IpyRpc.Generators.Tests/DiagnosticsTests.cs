using Microsoft.CodeAnalysis;

namespace IpyRpc.Generators.Tests;

public sealed class DiagnosticsTests
{
    private static Diagnostic[] Diagnose(string body, string usings = "") => GeneratorHarness.Run($$"""
        using System;
        using System.Collections.Generic;
        using System.Threading.Tasks;
        using IpyRpc;
        {{usings}}
        namespace Demo;
        {{body}}
        """).GeneratorDiagnostics.ToArray();

    private static Diagnostic Single(string id, Diagnostic[] diagnostics)
    {
        Diagnostic[] matching = [.. diagnostics.Where(d => d.Id == id)];
        Assert.True(matching.Length == 1, $"expected one {id}, got: {string.Join("; ", diagnostics.Select(d => d.ToString()))}");
        return matching[0];
    }

    [Fact]
    public void AnUnsupportedParameterTypeSaysWhichAndWhy()
    {
        Diagnostic d = Single("IPYRPC0001", Diagnose("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static int Run(Func<int> callback) => callback();
            }
            """));
        Assert.Equal(DiagnosticSeverity.Error, d.Severity);
        Assert.Contains("Parameter 'callback' of 'F.Run' has type 'Func<int>'", d.GetMessage());
        Assert.Contains("delegates cannot travel", d.GetMessage());
        Assert.Equal("https://github.com/ipyrpc/ipyrpc/blob/main/docs/diagnostics/IPYRPC0001.md", d.Descriptor.HelpLinkUri);
    }

    [Fact]
    public void AnUnsupportedMemberDeepInAParameterIsNamed()
    {
        Diagnostic d = Single("IPYRPC0001", Diagnose("""
            public sealed record Outer(Inner Inner);
            public sealed record Inner(IntPtr Handle);
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static int Run(Outer outer) => 0;
            }
            """));
        Assert.Contains("member Outer.Inner: member Inner.Handle: nint is a framework type without a wire format", d.GetMessage());
    }

    [Theory]
    [InlineData("[IpyRpcFormatter(typeof(NoDefault))]", "NoDefault needs a public parameterless constructor")]
    [InlineData("[IpyRpcFormatter(typeof(OfText))]", "names OfText, a formatter of string, not of Money")]
    [InlineData("[IpyRpcFormatter(typeof(NotOne))]", "names NotOne, which does not derive from IpyRpc.Formatting.IpyRpcFormatter<Money>")]
    [InlineData("[IpyRpcFormatter(typeof(Half))]", "names Half, which is not a concrete, non-generic class")]
    [InlineData("[IpyRpcFormatter(typeof(Good))][IpyRpcFormatter(typeof(Good2))]", "Money is given 2 formatters with [IpyRpcFormatter] (Good, Good2)")]
    public void AFormatterOfTheUsersOwnThatCannotBeUsedSaysWhy(string attributes, string expected)
    {
        Diagnostic d = Single("IPYRPC0001", Diagnose($$"""
            {{attributes}}
            public readonly record struct Money(long Cents);
            public abstract class Base : IpyRpcFormatter<Money>
            {
                public override void Write(ref MessagePackWriter writer, Money value) => writer.Write(value.Cents);
                public override Money Read(ref MessagePackReader reader) => new(reader.ReadInt64());
                public override void Write(System.Text.Json.Utf8JsonWriter writer, Money value) => writer.WriteNumberValue(value.Cents);
                public override Money Read(ref System.Text.Json.Utf8JsonReader reader) => new(reader.GetInt64());
            }
            public sealed class Good : Base { }
            public sealed class Good2 : Base { }
            public abstract class Half : Base { }
            public sealed class NoDefault(int scale) : Base { public int Scale => scale; }
            public sealed class NotOne { }
            public sealed class OfText : IpyRpcFormatter<string>
            {
                public override void Write(ref MessagePackWriter writer, string value) => writer.Write(value);
                public override string Read(ref MessagePackReader reader) => reader.ReadString()!;
                public override void Write(System.Text.Json.Utf8JsonWriter writer, string value) => writer.WriteStringValue(value);
                public override string Read(ref System.Text.Json.Utf8JsonReader reader) => reader.GetString()!;
            }
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static long Run(Money m) => m.Cents;
            }
            """, "using IpyRpc.Formatting;\nusing IpyRpc.MessagePack;"));
        Assert.Contains("Parameter 'm' of 'F.Run' has type 'Money'", d.GetMessage());
        Assert.Contains(expected, d.GetMessage());
    }

    [Fact]
    public void AnUnsupportedReturnTypeIsAnError()
    {
        Diagnostic d = Single("IPYRPC0002", Diagnose("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] public static Task<Dictionary<double, string>> Run() => null!;
            }
            """));
        Assert.Contains("dictionary keys must be strings, integers, GUIDs, enums, DateOnly or DateTime", d.GetMessage());
    }

    [Fact]
    public void ADuplicateExportedNameIsAnError()
    {
        Diagnostic d = Single("IPYRPC0003", Diagnose("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport("same")] public static int A() => 1;
                /// <summary>x</summary>
                [IpyRpcExport("same")] public static int B() => 2;
            }
            """));
        Assert.Contains("'same' is used by both 'F.A' and 'F.B'", d.GetMessage());
    }

    [Theory]
    [InlineData("public static void Run(ref int x) { }", "parameter 'x' is ref")]
    [InlineData("public static void Run(out int x) { x = 1; }", "parameter 'x' is out")]
    [InlineData("public static unsafe void Run(int* x) { }", "pointer")]
    [InlineData("public static T Run<T>(T x) => x;", "generic methods cannot be called remotely")]
    public void RefOutPointerAndGenericShapesAreRefused(string method, string expected)
    {
        Diagnostic[] diagnostics = Diagnose($$"""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] {{method}}
            }
            """);
        Assert.Contains(diagnostics, d => d.Id == "IPYRPC0004" && d.Severity == DiagnosticSeverity.Error && d.GetMessage().Contains(expected));
    }

    [Fact]
    public void APrivateMethodOrTypeIsRefused()
    {
        Diagnostic[] diagnostics = Diagnose("""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport] private static int Hidden() => 1;

                private static class Inner
                {
                    /// <summary>x</summary>
                    [IpyRpcExport] public static int AlsoHidden() => 1;
                }
            }
            """);
        Diagnostic[] inaccessible = [.. diagnostics.Where(d => d.Id == "IPYRPC0005")];
        Assert.Equal(2, inaccessible.Length);
        Assert.Contains(inaccessible, d => d.GetMessage().Contains("the method is private"));
        Assert.Contains(inaccessible, d => d.GetMessage().Contains("its containing type Inner is private"));
    }

    [Fact]
    public void MissingDocsAreAWarningSoCommandLineBuildsShowThem()
    {
        Diagnostic d = Single("IPYRPC0007", Diagnose("""
            public static class F
            {
                [IpyRpcExport] public static int Undocumented() => 1;
            }
            """));
        Assert.Equal(DiagnosticSeverity.Warning, d.Severity);
    }

    [Theory]
    [InlineData("", "it is empty")]
    [InlineData("a..b", "dots separate")]
    [InlineData("rpc.discover", "reserved")]
    [InlineData("has space", "' ' is not allowed")]
    public void InvalidExportNamesAreRefused(string name, string expected)
    {
        Diagnostic d = Single("IPYRPC0009", Diagnose($$"""
            public static class F
            {
                /// <summary>x</summary>
                [IpyRpcExport("{{name}}")] public static int Run() => 1;
            }
            """));
        Assert.Contains(expected, d.GetMessage());
    }

    [Fact]
    public void AConfigPatternThatMatchesNothingIsAWarningAndABadOneAnError()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute, Sources.Config, """
            using IpyRpc;
            namespace Demo;
            public static class More
            {
                public static GlobConfig Make() => new() { ["[unclosed"] = new() };
            }
            """);
        Diagnostic nothing = Single("IPYRPC0008", [.. result.GeneratorDiagnostics]);
        Assert.Equal(DiagnosticSeverity.Warning, nothing.Severity);
        Assert.Contains("'*_jsno' matches none of the exported functions or events (Crunch, add, compute_json, math.scale)", nothing.GetMessage());
        Assert.Equal("Source1.cs", nothing.Location.GetLineSpan().Path);
        Assert.Equal(11, nothing.Location.GetLineSpan().StartLinePosition.Line);
        Diagnostic bad = Single("IPYRPC0010", [.. result.GeneratorDiagnostics]);
        Assert.Contains("no closing ']'", bad.GetMessage());
    }

    [Fact]
    public void AConfigPatternThatNamesOnlyEventsIsNoTypo()
    {
        // An event's pattern decides who may subscribe to it (its Auth): it matches something.
        GeneratorHarness.Result result = GeneratorHarness.Run(Sources.Compute, """
            using IpyRpc;
            namespace Demo;
            public static class Alerts
            {
                /// <summary>For administrators.</summary>
                [IpyRpcEvent] public static readonly IpyRpcEvent<string> Raised = new("alerts.raised");

                public static GlobConfig Make() => new() { ["alerts.*"] = new() { Auth = Authorize.Role("admin") }, ["alertz.*"] = new() };
            }
            """);
        Diagnostic typo = Single("IPYRPC0008", [.. result.GeneratorDiagnostics]);
        Assert.Contains("'alertz.*' matches none of the exported functions or events (", typo.GetMessage());
        Assert.Contains("alerts.raised", typo.GetMessage());
    }

    [Fact]
    public void EveryDiagnosticHasAHelpPage()
    {
        string docs = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../docs/diagnostics"));
        for (int i = 1; i <= 14; i++)
        {
            string id = $"IPYRPC{i:0000}";
            Assert.True(File.Exists(Path.Combine(docs, id + ".md")), $"docs/diagnostics/{id}.md is missing");
        }
    }

    [Fact]
    public void AnExportedInterfaceMethodWithoutAContractSaysToMarkTheInterface()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run("""
            using IpyRpc;
            namespace Demo;
            public interface IThing
            {
                /// <summary>x</summary>
                [IpyRpcExport] int Run();
            }
            """);
        Diagnostic d = Single("IPYRPC0004", [.. result.GeneratorDiagnostics]);
        Assert.Contains("mark IThing with [IpyRpcContract]", d.GetMessage());
        Assert.Empty(result.Sources);
    }

    [Fact]
    public void AContractsPropertiesAndStaticMethodsAreDiagnosticsAndItsOtherMethodsStillGenerate()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run("""
            using IpyRpc;
            namespace Demo;
            /// <summary>A contract with members that cannot be remote.</summary>
            [IpyRpcContract]
            public interface IThing
            {
                /// <summary>A property.</summary>
                int Size { get; }

                /// <summary>A static member.</summary>
                static abstract int Make();

                /// <summary>Runs.</summary>
                /// <param name="x">A value.</param>
                int Run(int x);

                /// <summary>Generic.</summary>
                T Echo<T>(T value);
            }
            """);
        Diagnostic[] shape = [.. result.GeneratorDiagnostics.Where(d => d.Id == "IPYRPC0004")];
        Assert.Equal(3, shape.Length);
        Assert.Contains(shape, d => d.GetMessage().Contains("IThing.Size") && d.GetMessage().Contains("a property becomes a Get method"));
        Assert.Contains(shape, d => d.GetMessage().Contains("IThing.Make") && d.GetMessage().Contains("static interface members"));
        Assert.Contains(shape, d => d.GetMessage().Contains("IThing.Echo") && d.GetMessage().Contains("generic methods"));
        // Every diagnostic points at the member it is about.
        Assert.Equal([8, 11, 18], shape.Select(d => d.Location.GetLineSpan().StartLinePosition.Line + 1).Order());
        // Errors stop the build, but never with a compiler error inside generated code.
        Assert.Empty(result.CompileDiagnostics);
    }

    [Fact]
    public void ANameExportedByAContractAndByAClassIsOneDuplicateAndNoCompilerError()
    {
        GeneratorHarness.Result result = GeneratorHarness.Run("""
            using IpyRpc;
            namespace Demo;
            /// <summary>A contract.</summary>
            [IpyRpcContract]
            public interface IThing
            {
                /// <summary>Runs.</summary>
                [IpyRpcExport("run")] int Run();
            }

            public static class Other
            {
                /// <summary>Runs too.</summary>
                [IpyRpcExport("run")] public static int Run() => 1;
            }
            """);
        Diagnostic d = Single("IPYRPC0003", [.. result.GeneratorDiagnostics]);
        Assert.Contains("'run'", d.GetMessage());
        Assert.Empty(result.CompileDiagnostics);
    }
}
