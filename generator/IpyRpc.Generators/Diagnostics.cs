using System.Collections.Generic;
using Microsoft.CodeAnalysis;

namespace IpyRpc.Generators;

/// <summary>Every diagnostic the generator reports. IDs are stable; each has a page in docs/diagnostics/.</summary>
internal static class Diagnostics
{
    private const string HelpRoot = "https://github.com/ipyrpc/ipyrpc/blob/main/docs/diagnostics/";

    // Signatures (0001-0005)
    public const string UnsupportedParameterType = "IPYRPC0001";
    public const string UnsupportedReturnType = "IPYRPC0002";
    public const string DuplicateName = "IPYRPC0003";
    public const string UnsupportedMethodShape = "IPYRPC0004";
    public const string InaccessibleMethod = "IPYRPC0005";

    // The generator itself (0006)
    public const string GeneratorFailure = "IPYRPC0006";

    // Documentation (0007)
    public const string MissingDocumentation = "IPYRPC0007";

    // Config (0008-0010)
    public const string PatternMatchesNothing = "IPYRPC0008";
    public const string InvalidExportName = "IPYRPC0009";
    public const string InvalidPattern = "IPYRPC0010";

    // Events (0011)
    public const string InvalidEvent = "IPYRPC0011";

    // Clients generated from schema files (0012-0013)
    public const string SchemaUnreadable = "IPYRPC0012";
    public const string SchemaMethodSkipped = "IPYRPC0013";
    public const string SchemaEventSkipped = "IPYRPC0014";

    public static readonly DiagnosticDescriptor UnsupportedParameterTypeRule = new(
        id: "IPYRPC0001",
        title: "Parameter type cannot be serialized",
        messageFormat: "Parameter '{0}' of '{1}' has type '{2}', which IpyRpc cannot serialize: {3}",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0001.md");

    public static readonly DiagnosticDescriptor UnsupportedReturnTypeRule = new(
        id: "IPYRPC0002",
        title: "Return type cannot be serialized",
        messageFormat: "'{0}' returns '{1}', which IpyRpc cannot serialize: {2}",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0002.md");

    public static readonly DiagnosticDescriptor DuplicateNameRule = new(
        id: "IPYRPC0003",
        title: "Exported name is used twice",
        messageFormat: "The exported name '{0}' is used by both '{1}' and '{2}'; give one of them another name with [IpyRpcExport(\"...\")]",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0003.md");

    public static readonly DiagnosticDescriptor UnsupportedMethodShapeRule = new(
        id: "IPYRPC0004",
        title: "Method cannot be exported",
        messageFormat: "'{0}' cannot be exported: {1}",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0004.md");

    public static readonly DiagnosticDescriptor InaccessibleMethodRule = new(
        id: "IPYRPC0005",
        title: "Exported method is not accessible",
        messageFormat: "'{0}' cannot be exported because {1} is {2}; generated code needs it public or internal",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0005.md");

    public static readonly DiagnosticDescriptor GeneratorFailureRule = new(
        id: "IPYRPC0006",
        title: "The IpyRpc generator failed",
        messageFormat: "The IpyRpc generator failed while {0}: {1}. Please report this with the code that triggers it.",
        category: "IpyRpc.Generator",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0006.md");

    public static readonly DiagnosticDescriptor MissingDocumentationRule = new(
        id: "IPYRPC0007",
        title: "Exported method has no XML documentation",
        messageFormat: "'{0}' has no <summary>; clients see the doc comment as the function's help text",
        category: "IpyRpc.Documentation",
        defaultSeverity: DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0007.md");

    public static readonly DiagnosticDescriptor PatternMatchesNothingRule = new(
        id: "IPYRPC0008",
        title: "Config pattern matches no exported function",
        messageFormat: "The config pattern '{0}' matches none of the exported functions or events ({1})",
        category: "IpyRpc.Config",
        defaultSeverity: DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0008.md");

    public static readonly DiagnosticDescriptor InvalidExportNameRule = new(
        id: "IPYRPC0009",
        title: "Exported name is not valid",
        messageFormat: "'{0}' is not a valid exported name: {1}",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0009.md");

    public static readonly DiagnosticDescriptor InvalidPatternRule = new(
        id: "IPYRPC0010",
        title: "Config pattern is not a valid glob",
        messageFormat: "The config pattern '{0}' is not a valid glob: {1}",
        category: "IpyRpc.Config",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0010.md");

    public static readonly DiagnosticDescriptor InvalidEventRule = new(
        id: "IPYRPC0011",
        title: "Event declaration cannot be used",
        messageFormat: "The event '{0}' cannot be published: {1}",
        category: "IpyRpc.Signatures",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0011.md");

    public static readonly DiagnosticDescriptor SchemaUnreadableRule = new(
        id: "IPYRPC0012",
        title: "Schema file cannot be read",
        messageFormat: "No client is generated from {0}: {1}",
        category: "IpyRpc.Schema",
        defaultSeverity: DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0012.md");

    public static readonly DiagnosticDescriptor SchemaMethodSkippedRule = new(
        id: "IPYRPC0013",
        title: "Schema method has no typed client method",
        messageFormat: "'{0}' in {1} gets no typed method: {2}; call it with CallAsync, or write the schema again from a current server",
        category: "IpyRpc.Schema",
        defaultSeverity: DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0013.md");

    public static readonly DiagnosticDescriptor SchemaEventSkippedRule = new(
        id: "IPYRPC0014",
        title: "Schema event has no typed declaration",
        messageFormat: "'{0}' in {1} gets no typed event: {2}; subscribe to it by name (client.SubscribeAsync(\"{0}\", ...)), or write the schema again from a current server",
        category: "IpyRpc.Schema",
        defaultSeverity: DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        helpLinkUri: HelpRoot + "IPYRPC0014.md");

    private static readonly Dictionary<string, DiagnosticDescriptor> ById = new()
    {
        [UnsupportedParameterType] = UnsupportedParameterTypeRule,
        [UnsupportedReturnType] = UnsupportedReturnTypeRule,
        [DuplicateName] = DuplicateNameRule,
        [UnsupportedMethodShape] = UnsupportedMethodShapeRule,
        [InaccessibleMethod] = InaccessibleMethodRule,
        [GeneratorFailure] = GeneratorFailureRule,
        [MissingDocumentation] = MissingDocumentationRule,
        [PatternMatchesNothing] = PatternMatchesNothingRule,
        [InvalidExportName] = InvalidExportNameRule,
        [InvalidPattern] = InvalidPatternRule,
        [InvalidEvent] = InvalidEventRule,
        [SchemaUnreadable] = SchemaUnreadableRule,
        [SchemaMethodSkipped] = SchemaMethodSkippedRule,
        [SchemaEventSkipped] = SchemaEventSkippedRule,
    };

    public static DiagnosticDescriptor Get(string id) => ById[id];

    public static Diagnostic ToDiagnostic(Model.DiagnosticInfo info)
    {
        var args = new object[info.Arguments.Count];
        for (int i = 0; i < args.Length; i++) args[i] = info.Arguments[i];
        return Diagnostic.Create(Get(info.Id), info.Location?.ToLocation(), args);
    }
}
