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
        /// <summary>One result per method of an [IpyRpcContract] interface.</summary>
        public const string Contracts = nameof(Contracts);
        /// <summary>Exported methods grouped by declaring type.</summary>
        public const string Services = nameof(Services);
        /// <summary>Every function, for assembly-wide emitters.</summary>
        public const string AllFunctions = nameof(AllFunctions);
        /// <summary>The config patterns found in source, as text (what the bindings are emitted from).</summary>
        public const string ConfigPatterns = nameof(ConfigPatterns);
        /// <summary>The config patterns with where they are written (for diagnostics only).</summary>
        public const string ConfigSites = nameof(ConfigSites);
        /// <summary>Where each exported name is declared (for diagnostics only).</summary>
        public const string FunctionSites = nameof(FunctionSites);
        /// <summary>One result per [IpyRpcEvent] member.</summary>
        public const string Events = nameof(Events);
        /// <summary>The assembly's identifier-safe name.</summary>
        public const string AssemblyKey = nameof(AssemblyKey);
        /// <summary>One result per schema file (<c>*.ipyrpc.json</c> AdditionalFiles).</summary>
        public const string Schemas = nameof(Schemas);
    }

    private const string EventAttribute = "IpyRpc.IpyRpcEventAttribute";

    /// <inheritdoc/>
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValueProvider<string> assemblyKey = context.CompilationProvider
            .Select(static (c, _) => Names.AssemblyKey(c.AssemblyName))
            .WithTrackingName(Steps.AssemblyKey);

        IncrementalValuesProvider<FunctionResult> exported = context.SyntaxProvider
            .ForAttributeWithMetadataName(FunctionParser.ExportAttribute, static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.MethodDeclarationSyntax, FunctionParser.Parse)
            .WithTrackingName(Steps.Functions);

        IncrementalValuesProvider<FunctionResult> contracts = context.SyntaxProvider
            .ForAttributeWithMetadataName(FunctionParser.ContractAttribute, static (node, _) => node is Microsoft.CodeAnalysis.CSharp.Syntax.InterfaceDeclarationSyntax, FunctionParser.ParseContract)
            .SelectMany(static (all, _) => all)
            .WithTrackingName(Steps.Contracts);

        // Methods exported one by one and the methods of contracts: one set of functions from here on.
        IncrementalValueProvider<ImmutableArray<FunctionResult>> results = exported.Collect()
            .Combine(contracts.Collect())
            .Select(static (both, _) => both.Left.AddRange(both.Right));

        IncrementalValueProvider<EquatableArray<FunctionModel>> functions = results
            .Select(static (all, _) => all.Where(r => r.Model is not null).Select(r => r.Model!)
                .OrderBy(f => f.Service.FullName, StringComparer.Ordinal).ThenBy(f => f.ExportName, StringComparer.Ordinal).ToEquatableArray())
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

        // Locations change with every edit above them; the emitters never see them, only the diagnostics do.
        IncrementalValueProvider<EquatableArray<FunctionSite>> sites = results
            .Select(static (all, _) => all.Where(r => r.Model is not null)
                .Select(r => new FunctionSite(r.Model!.ExportName, r.Model.Service.FullName, r.Model.Service.Name + "." + r.Model.MethodName, r.Location))
            // The order the models are generated in (so the first of a duplicated name is the one generated), then source order.
                .OrderBy(s => s.Service, StringComparer.Ordinal).ThenBy(s => s.ExportName, StringComparer.Ordinal)
                .ThenBy(s => s.Location?.FilePath, StringComparer.Ordinal).ThenBy(s => s.Location?.Span.Start ?? 0).ToEquatableArray())
            .WithTrackingName(Steps.FunctionSites);

        IncrementalValueProvider<EquatableArray<ConfigPattern>> located = context.SyntaxProvider
            .CreateSyntaxProvider(ConfigParser.IsCandidate, ConfigParser.Parse)
            .Where(static p => p is not null)
            .Select(static (p, _) => p!)
            .Collect()
            .Select(static (all, _) => all.ToEquatableArray())
            .WithTrackingName(Steps.ConfigSites);

        IncrementalValueProvider<EquatableArray<string>> patterns = located
            .Select(static (all, _) => all.Select(p => p.Pattern).Distinct().OrderBy(p => p, StringComparer.Ordinal).ToEquatableArray())
            .WithTrackingName(Steps.ConfigPatterns);

        // Schema files: a typed client for a server whose code this project never sees.
        IncrementalValuesProvider<SchemaResult> schemas = context.AdditionalTextsProvider
            .Where(static f => f.Path.EndsWith(SchemaParser.Extension, StringComparison.OrdinalIgnoreCase))
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Select(static (input, ct) =>
            {
                Microsoft.CodeAnalysis.Diagnostics.AnalyzerConfigOptions item = input.Right.GetOptions(input.Left);
                item.TryGetValue("build_metadata.AdditionalFiles.IpyRpcNamespace", out string? ns);
                item.TryGetValue("build_metadata.AdditionalFiles.IpyRpcClient", out string? client);
                input.Right.GlobalOptions.TryGetValue("build_property.RootNamespace", out string? root);
                return SchemaParser.Parse(input.Left.Path, input.Left.GetText(ct)?.ToString(), ns, client, root);
            })
            .WithTrackingName(Steps.Schemas);

        IncrementalValueProvider<EquatableArray<FunctionModel>> schemaFunctions = schemas
            .Select(static (r, _) => r.Model?.Functions ?? EquatableArray<FunctionModel>.Empty)
            .Collect()
            .Select(static (all, _) => all.SelectMany(f => f).ToEquatableArray());

        IncrementalValueProvider<EquatableArray<EventModel>> schemaEvents = schemas
            .Select(static (r, _) => r.Model?.Events ?? EquatableArray<EventModel>.Empty)
            .Collect()
            .Select(static (all, _) => all.SelectMany(e => e).ToEquatableArray());

        context.RegisterSourceOutput(schemas.Combine(assemblyKey), static (spc, input) =>
        {
            Report(spc, input.Left.Diagnostics);
            if (input.Left.Model is not { } schema) return;
            Guard(spc, "emitting the client for " + schema.Key.SchemaFile, () =>
            {
                spc.AddSource(schema.Key.HintName + ".IpyRpc.g.cs", ServiceEmitter.Emit(new ServiceModel(schema.Key, input.Right, schema.Functions, EquatableArray<EventModel>.Empty)));
                if (SchemaTypesEmitter.Emit(schema) is { } types) spc.AddSource(schema.Key.HintName + ".Types.IpyRpc.g.cs", types);
                if (SchemaTypesEmitter.EmitEvents(schema) is { } events) spc.AddSource(schema.Key.HintName + ".Events.IpyRpc.g.cs", events);
            });
        });

        // Per method, so an edit reports again only what it touched.
        context.RegisterSourceOutput(exported, static (spc, r) => Report(spc, r.Diagnostics));
        context.RegisterSourceOutput(contracts, static (spc, r) => Report(spc, r.Diagnostics));

        context.RegisterSourceOutput(eventResults, static (spc, r) => Report(spc, r.Diagnostics));

        context.RegisterSourceOutput(services, static (spc, service) =>
            Guard(spc, "emitting the dispatch and proxy of " + service.Key.FullName, () =>
                spc.AddSource(service.Key.HintName + ".IpyRpc.g.cs", ServiceEmitter.Emit(service))));

        context.RegisterSourceOutput(sites, static (spc, all) =>
        {
            foreach (DiagnosticInfo d in Duplicates(all)) spc.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
        });

        // One formatter class for the assembly: its own exports' types and those of its schema clients.
        context.RegisterSourceOutput(functions.Combine(schemaFunctions).Combine(events.Combine(schemaEvents)).Combine(assemblyKey), static (spc, input) =>
            Guard(spc, "emitting formatters", () =>
            {
                IReadOnlyList<FunctionModel> all = input.Left.Left.Right.Count == 0 ? input.Left.Left.Left : input.Left.Left.Left.Concat(input.Left.Left.Right).ToArray();
                IReadOnlyList<EventModel> declared = input.Left.Right.Right.Count == 0 ? input.Left.Right.Left : input.Left.Right.Left.Concat(input.Left.Right.Right).ToArray();
                if (FormatterEmitter.Emit(all, input.Right, declared) is { } source)
                {
                    spc.AddSource("IpyRpc.Formatters.g.cs", source);
                }
            }));

        context.RegisterSourceOutput(functions.Combine(events).Combine(assemblyKey), static (spc, input) =>
            Guard(spc, "emitting schemas", () =>
            {
                if (JsonSchema.Emit(input.Left.Left, input.Left.Right, input.Right) is { } source)
                {
                    spc.AddSource("IpyRpc.Schemas.g.cs", source);
                }
            }));

        IncrementalValueProvider<EquatableArray<string>> exportNames = functions
            .Select(static (all, _) => all.Select(f => f.ExportName).Distinct().ToEquatableArray()); // a duplicated name (IPYRPC0003) is listed once

        // A pattern may name events too: its Auth decides who may subscribe.
        IncrementalValueProvider<EquatableArray<string>> configurable = exportNames.Combine(events)
            .Select(static (input, _) => input.Left.Concat(input.Right.Select(e => e.EventName)).Distinct().ToEquatableArray());

        context.RegisterSourceOutput(located.Combine(configurable), static (spc, input) =>
        {
            foreach (DiagnosticInfo d in ConfigEmitter.Check(input.Left.ToArray(), input.Right.ToArray())) spc.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
        });

        context.RegisterSourceOutput(patterns.Combine(exportNames).Combine(assemblyKey), static (spc, input) =>
            Guard(spc, "binding config patterns", () =>
            {
                if (ConfigEmitter.Emit(input.Left.Left.ToArray(), input.Left.Right.ToArray(), input.Right) is { } source)
                {
                    spc.AddSource("IpyRpc.ConfigBindings.g.cs", source);
                }
            }));
    }

    private static ImmutableArray<ServiceModel> GroupByService(EquatableArray<FunctionModel> functions, EquatableArray<EventModel> events, string assemblyKey)
    {
        // A name exported twice is IPYRPC0003; only its first use is generated, so no compiler error joins it.
        var firsts = new Dictionary<string, FunctionModel>(StringComparer.Ordinal);
        foreach (FunctionModel f in functions)
        {
            if (!firsts.ContainsKey(f.ExportName)) firsts[f.ExportName] = f;
        }

        ILookup<ServiceKey, FunctionModel> byService = functions.Where(f => ReferenceEquals(f, firsts[f.ExportName])).ToLookup(f => f.Service);
        ILookup<ServiceKey, EventModel> eventsByService = events.ToLookup(e => e.Service);
        return functions.Select(f => f.Service).Concat(events.Select(e => e.Service))
            .Distinct()
            .OrderBy(k => k.FullName, StringComparer.Ordinal)
            .Select(k => new ServiceModel(
                k,
                assemblyKey,
                byService[k].OrderBy(f => f.ExportName, StringComparer.Ordinal).ToEquatableArray(),
                eventsByService[k].OrderBy(e => e.EventName, StringComparer.Ordinal).ToEquatableArray()))
            .ToImmutableArray();
    }

    private static void Report(SourceProductionContext context, EquatableArray<DiagnosticInfo> diagnostics)
    {
        foreach (DiagnosticInfo d in diagnostics) context.ReportDiagnostic(Diagnostics.ToDiagnostic(d));
    }

    private static IEnumerable<DiagnosticInfo> Duplicates(EquatableArray<FunctionSite> sites)
    {
        foreach (IGrouping<string, FunctionSite> group in sites.GroupBy(f => f.ExportName).Where(g => g.Count() > 1))
        {
            FunctionSite first = group.First();
            foreach (FunctionSite other in group.Skip(1))
            {
                yield return new DiagnosticInfo(Diagnostics.DuplicateName, other.Location,
                    new[] { group.Key, first.Declaration, other.Declaration }.ToEquatableArray());
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
