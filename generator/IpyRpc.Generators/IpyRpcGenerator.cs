using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using IpyRpc.Generators.Emit;
using IpyRpc.Generators.Model;
using IpyRpc.Generators.Parse;
using Microsoft.CodeAnalysis;

namespace IpyRpc.Generators;

/// <summary>
/// The IpyRpc incremental generator. Each [IpyRpcExport] method becomes one equatable
/// <see cref="FunctionModel"/>; every emitter reads those models: dispatch and proxies per type,
/// formatters per assembly, config bindings per assembly.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class IpyRpcGenerator : IIncrementalGenerator
{
    /// <summary>Tracking names of the pipeline steps, for caching tests.</summary>
    public static class Steps
    {
        /// <summary>One result per exported method.</summary>
        public const string Functions = nameof(Functions);
        /// <summary>Exported methods grouped by declaring type.</summary>
        public const string Services = nameof(Services);
        /// <summary>Every function, for assembly-wide emitters.</summary>
        public const string AllFunctions = nameof(AllFunctions);
        /// <summary>Config patterns found in source.</summary>
        public const string ConfigPatterns = nameof(ConfigPatterns);
        /// <summary>One result per [IpyRpcEvent] member.</summary>
        public const string Events = nameof(Events);
        /// <summary>The assembly's identifier-safe name.</summary>
        public const string AssemblyKey = nameof(AssemblyKey);
    }

    private const string ExportAttribute = "IpyRpc.IpyRpcExportAttribute";
    private const string EventAttribute = "IpyRpc.IpyRpcEventAttribute";

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValueProvider<string> assemblyKey = context.CompilationProvider
            .Select(static (c, _) => Names.AssemblyKey(c.AssemblyName))
            .WithTrackingName(Steps.AssemblyKey);

        IncrementalValuesProvider<FunctionResult> results = context.SyntaxProvider
            .ForAttributeWithMetadataName(ExportAttribute, static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax, FunctionParser.Parse)
            .WithTrackingName(Steps.Functions);

        IncrementalValueProvider<EquatableArray<FunctionModel>> functions = results
            .Where(static r => r.Model is not null)
            .Select(static (r, _) => r.Model!)
            .Collect()
            .Select(static (all, _) => all.OrderBy(f => f.Service.FullName, StringComparer.Ordinal).ThenBy(f => f.ExportName, StringComparer.Ordinal).ToEquatableArray())
            .WithTrackingName(Steps.AllFunctions);

        IncrementalValuesProvider<EventResult> eventResults = context.SyntaxProvider
            .ForAttributeWithMetadataName(EventAttribute, EventParser.IsCandidate, EventParser.Parse)
            .WithTrackingName(Steps.Events);

        IncrementalValueProvider<EquatableArray<EventModel>> events = eventResults
            .Where(static r => r.Model is not null)
            .Select(static (r, _) => r.Model!)
            .Collect()
            .Select(static (all, _) => all.OrderBy(e => e.Service.FullName, StringComparer.Ordinal).ThenBy(e => e.EventName, StringComparer.Ordinal).ToEquatableArray());

        IncrementalValuesProvider<ServiceModel> services = functions
            .Combine(events)
            .Combine(assemblyKey)
            .SelectMany(static (input, _) => GroupByService(input.Left.Left, input.Left.Right, input.Right))
            .WithTrackingName(Steps.Services);

        IncrementalValueProvider<EquatableArray<ConfigPattern>> patterns = context.SyntaxProvider
            .CreateSyntaxProvider(ConfigParser.IsCandidate, ConfigParser.Parse)
            .Where(static p => p is not null)
            .Select(static (p, _) => p!)
            .Collect()
            .Select(static (all, _) => all.ToEquatableArray())
            .WithTrackingName(Steps.ConfigPatterns);

        context.RegisterSourceOutput(results, static (spc, r) =>
        {
            foreach (DiagnosticInfo d in r.Diagnostics) spc.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
        });

        context.RegisterSourceOutput(eventResults, static (spc, r) =>
        {
            foreach (DiagnosticInfo d in r.Diagnostics) spc.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
        });

        context.RegisterSourceOutput(services, static (spc, service) =>
            Guard(spc, "emitting the dispatch and proxy of " + service.Key.FullName, () =>
                spc.AddSource(service.Key.HintName + ".IpyRpc.g.cs", ServiceEmitter.Emit(service))));

        context.RegisterSourceOutput(functions.Combine(events).Combine(assemblyKey), static (spc, input) =>
            Guard(spc, "emitting formatters", () =>
            {
                var pair = (Left: input.Left.Left, Right: input.Right);
                foreach (DiagnosticInfo d in Duplicates(pair.Left)) spc.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
                if (FormatterEmitter.Emit(pair.Left, pair.Right, input.Left.Right) is { } source)
                {
                    spc.AddSource("IpyRpc.Formatters.g.cs", source);
                }
            }));

        context.RegisterSourceOutput(patterns.Combine(functions).Combine(assemblyKey), static (spc, input) =>
            Guard(spc, "binding config patterns", () =>
            {
                EquatableArray<ConfigPattern> found = input.Left.Left;
                string[] names = input.Left.Right.Select(f => f.ExportName).ToArray();
                foreach (DiagnosticInfo d in ConfigEmitter.Check(found.ToArray(), names)) spc.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
                if (ConfigEmitter.Emit(found.ToArray(), names, input.Right) is { } source)
                {
                    spc.AddSource("IpyRpc.ConfigBindings.g.cs", source);
                }
            }));
    }

    private static ImmutableArray<ServiceModel> GroupByService(EquatableArray<FunctionModel> functions, EquatableArray<EventModel> events, string assemblyKey)
        => functions.Select(f => f.Service).Concat(events.Select(e => e.Service))
            .Distinct()
            .OrderBy(k => k.FullName, StringComparer.Ordinal)
            .Select(k => new ServiceModel(
                k,
                assemblyKey,
                // A name exported twice is IPYRPC0003; only its first use is generated, so no compiler error joins it.
                functions.Where(f => f.Service == k && ReferenceEquals(f, functions.First(g => g.ExportName == f.ExportName))).OrderBy(f => f.ExportName, StringComparer.Ordinal).ToEquatableArray(),
                events.Where(e => e.Service == k).OrderBy(e => e.EventName, StringComparer.Ordinal).ToEquatableArray()))
            .ToImmutableArray();

    private static IEnumerable<DiagnosticInfo> Duplicates(EquatableArray<FunctionModel> functions)
    {
        foreach (IGrouping<string, FunctionModel> group in functions.GroupBy(f => f.ExportName).Where(g => g.Count() > 1))
        {
            FunctionModel first = group.First();
            foreach (FunctionModel other in group.Skip(1))
            {
                yield return new DiagnosticInfo(Diagnostics.DuplicateName, other.Location,
                    new[] { group.Key, first.Service.Name + "." + first.MethodName, other.Service.Name + "." + other.MethodName }.ToEquatableArray());
            }
        }
    }

    // A generator crash becomes a diagnostic that says what failed, never only CS8785.
    private static void Guard(SourceProductionContext context, string what, Action emit)
    {
        try
        {
            emit();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            context.ReportDiagnostic(Diagnostic.Create(Diagnostics.Get(Diagnostics.GeneratorFailure), Location.None, what, e.GetType().Name + ": " + e.Message));
        }
    }
}
