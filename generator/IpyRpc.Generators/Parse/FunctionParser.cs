using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace IpyRpc.Generators.Parse;

/// <summary>Turns one [IpyRpcExport] method into a <see cref="FunctionModel"/> and its diagnostics.</summary>
internal static class FunctionParser
{
    public static FunctionResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var diagnostics = new List<DiagnosticInfo>();
        try
        {
            if (context.TargetSymbol is not IMethodSymbol method)
            {
                return new FunctionResult(null, EquatableArray<DiagnosticInfo>.Empty);
            }

            // A method of a contract interface is read with its contract (ParseContract), where [IpyRpcExport] only renames it.
            if (IsContract(method.ContainingType))
            {
                return new FunctionResult(null, EquatableArray<DiagnosticInfo>.Empty);
            }

            var syntax = context.TargetNode as MethodDeclarationSyntax;
            FunctionModel? model = ParseMethod(method, syntax, context.Attributes[0], contract: false, context.SemanticModel.Compilation, diagnostics, cancellationToken);
            return new FunctionResult(model, diagnostics.ToEquatableArray(), LocationInfo.From(syntax?.Identifier.GetLocation() ?? method.Locations.FirstOrDefault()));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.GeneratorFailure, context.TargetNode.GetLocation(), $"reading '{context.TargetSymbol.Name}'", e.GetType().Name + ": " + e.Message));
            return new FunctionResult(null, diagnostics.ToEquatableArray());
        }
    }

    public const string ContractAttribute = "IpyRpc.IpyRpcContractAttribute";
    public const string ExportAttribute = "IpyRpc.IpyRpcExportAttribute";

    private static bool IsContract(INamedTypeSymbol? type)
        => type is { TypeKind: Microsoft.CodeAnalysis.TypeKind.Interface } && type.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == ContractAttribute);

    /// <summary>Every method an [IpyRpcContract] interface declares, one result each; members that cannot be remote functions are diagnostics.</summary>
    public static EquatableArray<FunctionResult> ParseContract(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        if (context.TargetSymbol is not INamedTypeSymbol contract) return EquatableArray<FunctionResult>.Empty;
        var results = new List<FunctionResult>();
        foreach (ISymbol member in contract.GetMembers())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var diagnostics = new List<DiagnosticInfo>();
            Location location = member.Locations.FirstOrDefault() ?? Location.None;
            try
            {
                switch (member)
                {
                    case IMethodSymbol { MethodKind: MethodKind.Ordinary } method:
                        var syntax = method.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax(cancellationToken) as MethodDeclarationSyntax;
                        AttributeData? export = method.GetAttributes().FirstOrDefault(a => a.AttributeClass?.ToDisplayString() == ExportAttribute);
                        FunctionModel? model = ParseMethod(method, syntax, export, contract: true, context.SemanticModel.Compilation, diagnostics, cancellationToken);
                        results.Add(new FunctionResult(model, diagnostics.ToEquatableArray(), LocationInfo.From(syntax?.Identifier.GetLocation() ?? location)));
                        continue;
                    case IMethodSymbol:
                        continue; // accessors and operators: the properties and events themselves are reported
                    case IPropertySymbol or IEventSymbol or IFieldSymbol:
                        diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, location, contract.Name + "." + member.Name,
                            "a contract's members are its remote functions, so each must be a method; make it one (a property becomes a Get method) or move it to another interface"));
                        break;
                    default:
                        continue; // nested types belong to nobody's calls
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.GeneratorFailure, location, $"reading '{contract.Name}.{member.Name}'", e.GetType().Name + ": " + e.Message));
            }

            results.Add(new FunctionResult(null, diagnostics.ToEquatableArray()));
        }

        return results.ToEquatableArray();
    }

    private static FunctionModel? ParseMethod(IMethodSymbol method, MethodDeclarationSyntax? syntax, AttributeData? attribute, bool contract, Compilation compilation, List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
    {
        Location location = syntax?.Identifier.GetLocation() ?? method.Locations.FirstOrDefault() ?? Location.None;
        string display = method.ContainingType.Name + "." + method.Name;
        int errors = diagnostics.Count;

        string exportName = method.Name;
        if (attribute is { ConstructorArguments.Length: 1 } && attribute.ConstructorArguments[0].Value is string given)
        {
            exportName = given;
        }

        if (ExportNameProblem(exportName) is { } nameProblem)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.InvalidExportName, attribute?.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation() ?? location, exportName, nameProblem));
        }

        if (contract && method.IsStatic)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, location, display, "static interface members are not called on an implementation; make it an instance method"));
            return null;
        }

        // Accessibility: generated code lives in the same assembly, so internal is enough.
        if (method.DeclaredAccessibility is not (Microsoft.CodeAnalysis.Accessibility.Public or Microsoft.CodeAnalysis.Accessibility.Internal or Microsoft.CodeAnalysis.Accessibility.ProtectedOrInternal))
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.InaccessibleMethod, location, display, "the method", AccessText(method.DeclaredAccessibility)));
        }

        for (INamedTypeSymbol? t = method.ContainingType; t is not null; t = t.ContainingType)
        {
            if (t.DeclaredAccessibility is not (Microsoft.CodeAnalysis.Accessibility.Public or Microsoft.CodeAnalysis.Accessibility.Internal or Microsoft.CodeAnalysis.Accessibility.ProtectedOrInternal))
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.InaccessibleMethod, location, display, "its containing type " + t.Name, AccessText(t.DeclaredAccessibility)));
            }

            if (t.IsGenericType)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, location, display, $"its containing type {t.Name} is generic; export methods of non-generic types"));
            }
        }

        if (method.IsGenericMethod)
        {
            // One diagnostic for one problem: its T-typed parameters and result would each say the same again.
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, location, display, "generic methods cannot be called remotely (the caller cannot name a type argument); make a non-generic overload"));
            return null;
        }

        if (!contract && method.ContainingType.TypeKind == Microsoft.CodeAnalysis.TypeKind.Interface)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, location, display, $"interface methods are exported by their contract: mark {method.ContainingType.Name} with [IpyRpcContract] (each of its methods is then exported, and [IpyRpcExport] only renames one)"));
        }
        else if (!contract && method.IsAbstract)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, location, display, "abstract methods have no body to call; export the implementation"));
        }

        var analyzer = new TypeAnalyzer(compilation);
        var parameters = new List<ParameterModel>();
        for (int i = 0; i < method.Parameters.Length; i++)
        {
            IParameterSymbol p = method.Parameters[i];
            Location pLocation = p.Locations.FirstOrDefault() ?? location;
            if (p.RefKind != RefKind.None)
            {
                string refKind = p.RefKind switch { RefKind.Out => "out", RefKind.Ref => "ref", _ => "in" };
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, pLocation, display, $"parameter '{p.Name}' is {refKind}; remote calls pass values one way, so return the value instead"));
                continue;
            }

            string pDisplay = p.Type.ToDisplayString(TypeAnalyzer.ShortFormat);
            if (p.Type is INamedTypeSymbol { IsGenericType: true } progress && progress.ConstructedFrom.ToDisplayString(TypeAnalyzer.FullFormat) == "global::System.IProgress<T>")
            {
                ITypeSymbol reported = progress.TypeArguments[0];
                TypeModel? reportedType = reported is ITypeParameterSymbol ? null : analyzer.Analyze(reported, out string? progressError);
                if (reportedType is null)
                {
                    diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedParameterType, pLocation, p.Name, display, pDisplay, "its reports cannot be serialized"));
                    continue;
                }

                if (parameters.Any(x => x.IsProgress))
                {
                    diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, pLocation, display, $"parameter '{p.Name}' is a second IProgress<T>; a function reports progress through one"));
                    continue;
                }

                parameters.Add(new ParameterModel(p.Name, reportedType, "progress", null, null, pDisplay, Source(p.Type), IsProgress: true));
                continue;
            }

            if (FilledByCall(TypeAnalyzer.FullName(p.Type)) is { } filledBy)
            {
                parameters.Add(new ParameterModel(p.Name, null, filledBy, null, null, pDisplay, Source(p.Type)));
                continue;
            }

            if (p.Type is IPointerTypeSymbol or IFunctionPointerTypeSymbol)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, pLocation, display, $"parameter '{p.Name}' is a pointer; pointers mean nothing in another process"));
                continue;
            }

            if (p.Type is ITypeParameterSymbol)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedMethodShape, pLocation, display, $"parameter '{p.Name}' has the open generic type {p.Type.Name}"));
                continue;
            }

            TypeModel? type = analyzer.Analyze(p.Type, out string? error);
            if (type is null)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedParameterType, pLocation, p.Name, display, pDisplay, error ?? "unknown reason"));
                continue;
            }

            string? defaultExpression = p.HasExplicitDefaultValue ? DefaultExpression(p) : null;
            // A params array gathers the positional arguments past the others (and is empty when there are none).
            string? paramsEmpty = p.IsParams && p.Type is IArrayTypeSymbol { Rank: 1 } gathered ? $"global::System.Array.Empty<{TypeAnalyzer.FullName(gathered.ElementType)}>()" : null;
            parameters.Add(new ParameterModel(p.Name, type, null, defaultExpression, null, pDisplay, Source(p.Type), DefaultDisplay: p.HasExplicitDefaultValue ? DefaultDisplay(p, defaultExpression!) : null, ParamsEmpty: paramsEmpty));
        }

        (ReturnKind kind, ITypeSymbol? resultType) = ReturnShape(method.ReturnType);
        TypeModel? returnType = null;
        string returnDisplay = resultType is null ? "void" : resultType.ToDisplayString(TypeAnalyzer.ShortFormat);
        if (kind == ReturnKind.Stream) returnDisplay = "IAsyncEnumerable<" + returnDisplay + ">";
        if (resultType is not null)
        {
            if (resultType is ITypeParameterSymbol)
            {
                diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedReturnType, location, display, returnDisplay, "it is an open generic type parameter"));
            }
            else
            {
                returnType = analyzer.Analyze(resultType, out string? error);
                if (returnType is null)
                {
                    diagnostics.Add(DiagnosticInfo.Create(Diagnostics.UnsupportedReturnType, syntax?.ReturnType.GetLocation() ?? location, display, returnDisplay, error ?? "unknown reason"));
                }
            }
        }

        DocModel docs = DocParser.Parse(method, syntax);
        if (docs.Summary is null)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.MissingDocumentation, location, display));
        }

        if (diagnostics.Skip(errors).Any(d => Diagnostics.Get(d.Id).DefaultSeverity == DiagnosticSeverity.Error))
        {
            return null;
        }

        // Attach each parameter's doc text.
        parameters = parameters.Select(p => p with { Doc = docs.Params.FirstOrDefault(d => d.Name == p.Name)?.Text }).ToList();

        return new FunctionModel(
            exportName,
            method.Name,
            ServiceOf(method.ContainingType, contract),
            method.IsStatic,
            kind,
            returnType,
            returnDisplay,
            resultType is null ? "void" : Source(resultType),
            parameters.ToEquatableArray(),
            docs,
            analyzer.Objects.ToEquatableArray());
    }

    private static readonly SymbolDisplayFormat SourceFormat = TypeAnalyzer.FullFormat.AddMiscellaneousOptions(SymbolDisplayMiscellaneousOptions.IncludeNullableReferenceTypeModifier);

    /// <summary>The type as generated code writes it: fully qualified, with its nullable annotation.</summary>
    private static string Source(ITypeSymbol type) => type.ToDisplayString(SourceFormat);

    public static ServiceKey ServiceOf(INamedTypeSymbol type, bool contract = false)
    {
        string ns = type.ContainingNamespace is { IsGlobalNamespace: false } n ? n.ToDisplayString() : "";
        var path = new List<string>();
        for (INamedTypeSymbol? t = type; t is not null; t = t.ContainingType) path.Insert(0, t.Name);
        bool isPublic = true;
        for (INamedTypeSymbol? t = type; t is not null; t = t.ContainingType) isPublic &= t.DeclaredAccessibility == Microsoft.CodeAnalysis.Accessibility.Public;
        bool hasCtor = !type.IsStatic && !type.IsAbstract && type.InstanceConstructors.Any(c => c.Parameters.Length == 0 && c.DeclaredAccessibility is Microsoft.CodeAnalysis.Accessibility.Public or Microsoft.CodeAnalysis.Accessibility.Internal);
        return new ServiceKey(
            ns,
            TypeAnalyzer.FullName(type),
            type.Name,
            (ns.Length == 0 ? "" : ns + ".") + string.Join(".", path),
            string.Join("_", path),
            isPublic,
            type.IsStatic,
            hasCtor,
            contract,
            type.TypeKind == Microsoft.CodeAnalysis.TypeKind.Interface && type.GetMembers().Any(m => m.IsStatic && m.IsAbstract));
    }

    private static (ReturnKind, ITypeSymbol?) ReturnShape(ITypeSymbol type)
    {
        if (type.SpecialType == SpecialType.System_Void) return (ReturnKind.Void, null);
        string full = type is INamedTypeSymbol { IsGenericType: true } g ? g.ConstructedFrom.ToDisplayString(TypeAnalyzer.FullFormat) : TypeAnalyzer.FullName(type);
        return full switch
        {
            "global::System.Threading.Tasks.Task" => (ReturnKind.Task, null),
            "global::System.Threading.Tasks.ValueTask" => (ReturnKind.ValueTask, null),
            "global::System.Threading.Tasks.Task<TResult>" => (ReturnKind.TaskOfT, ((INamedTypeSymbol)type).TypeArguments[0]),
            "global::System.Threading.Tasks.ValueTask<TResult>" => (ReturnKind.ValueTaskOfT, ((INamedTypeSymbol)type).TypeArguments[0]),
            "global::System.Collections.Generic.IAsyncEnumerable<T>" => (ReturnKind.Stream, ((INamedTypeSymbol)type).TypeArguments[0]),
            _ => (ReturnKind.Value, type),
        };
    }

    /// <summary>The default as people read it in help: an enum's member name (<c>Color.Green</c>) rather than the cast generated code needs.</summary>
    private static string DefaultDisplay(IParameterSymbol p, string expression)
    {
        ITypeSymbol type = p.Type is INamedTypeSymbol { ConstructedFrom.SpecialType: SpecialType.System_Nullable_T } n ? n.TypeArguments[0] : p.Type;
        if (type.TypeKind != Microsoft.CodeAnalysis.TypeKind.Enum || p.ExplicitDefaultValue is not { } value) return expression;
        IFieldSymbol? member = type.GetMembers().OfType<IFieldSymbol>().FirstOrDefault(f => f.HasConstantValue && Equals(f.ConstantValue, value));
        return member is null ? $"({type.Name}){Literal(value)}" : $"{type.Name}.{member.Name}";
    }

    /// <summary>The default value as C# source, cast to the parameter's type where a literal alone would not do.</summary>
    private static string DefaultExpression(IParameterSymbol p)
    {
        object? value = p.ExplicitDefaultValue;
        ITypeSymbol type = p.Type is INamedTypeSymbol { ConstructedFrom.SpecialType: SpecialType.System_Nullable_T } n ? n.TypeArguments[0] : p.Type;
        if (value is null)
        {
            return p.Type.IsValueType && p.Type.OriginalDefinition.SpecialType != SpecialType.System_Nullable_T ? "default" : "null";
        }

        if (type.TypeKind == Microsoft.CodeAnalysis.TypeKind.Enum)
        {
            return "(" + TypeAnalyzer.FullName(type) + ")" + Literal(value);
        }

        return Literal(value);
    }

    private static string Literal(object value) => value switch
    {
        string s => SymbolDisplay.FormatLiteral(s, quote: true),
        char c => SymbolDisplay.FormatLiteral(c, quote: true),
        bool b => b ? "true" : "false",
        float f => f.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "F",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture) + "D",
        decimal m => m.ToString(System.Globalization.CultureInfo.InvariantCulture) + "M",
        long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture) + "L",
        ulong u => u.ToString(System.Globalization.CultureInfo.InvariantCulture) + "UL",
        uint u => u.ToString(System.Globalization.CultureInfo.InvariantCulture) + "U",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "default",
    };

    private static string? ExportNameProblem(string name)
    {
        if (string.IsNullOrWhiteSpace(name)) return "it is empty";
        if (name.StartsWith(".", StringComparison.Ordinal) || name.EndsWith(".", StringComparison.Ordinal) || name.Contains("..")) return "dots separate non-empty segments (as in math.linear.solve)";
        if (name.StartsWith("rpc.", StringComparison.Ordinal)) return "names starting with 'rpc.' are reserved by JSON-RPC";
        foreach (char c in name)
        {
            if (!(char.IsLetterOrDigit(c) || c is '_' or '.' or '-')) return $"'{c}' is not allowed (use letters, digits, '_', '-' and '.')";
        }

        return null;
    }

    private static string AccessText(Accessibility a) => a switch
    {
        Microsoft.CodeAnalysis.Accessibility.Private => "private",
        Microsoft.CodeAnalysis.Accessibility.Protected => "protected",
        Microsoft.CodeAnalysis.Accessibility.ProtectedAndInternal => "private protected",
        _ => a.ToString().ToLowerInvariant(),
    };

    /// <summary>What the call fills a parameter of this type with, when it is not an argument: the invocation's member to pass.</summary>
    private static string? FilledByCall(string fullTypeName) => fullTypeName switch
    {
        "global::System.Threading.CancellationToken" => "call.CancellationToken",
        "global::IpyRpc.IpyRpcConnection" => "call.Connection",
        "global::IpyRpc.IpyRpcPointers" => "call.Pointers",
        _ => null,
    };
}
