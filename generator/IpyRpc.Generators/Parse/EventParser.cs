using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace IpyRpc.Generators.Parse;

/// <summary>Turns one [IpyRpcEvent] field or property into an <see cref="EventModel"/> and its diagnostics.</summary>
internal static class EventParser
{
    public static bool IsCandidate(SyntaxNode node, CancellationToken _) => node is VariableDeclaratorSyntax or PropertyDeclarationSyntax;

    public static EventResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
    {
        var diagnostics = new List<DiagnosticInfo>();
        try
        {
            return new EventResult(ParseMember(context, diagnostics, cancellationToken), diagnostics.ToEquatableArray());
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.GeneratorFailure, context.TargetNode.GetLocation(), $"reading the event '{context.TargetSymbol.Name}'", e.GetType().Name + ": " + e.Message));
            return new EventResult(null, diagnostics.ToEquatableArray());
        }
    }

    private static EventModel? ParseMember(GeneratorAttributeSyntaxContext context, List<DiagnosticInfo> diagnostics, CancellationToken cancellationToken)
    {
        ISymbol member = context.TargetSymbol;
        (ITypeSymbol? type, ExpressionSyntax? initializer, SyntaxNode docNode) = member switch
        {
            IFieldSymbol f => (f.Type, (context.TargetNode as VariableDeclaratorSyntax)?.Initializer?.Value, context.TargetNode.Parent?.Parent ?? context.TargetNode),
            IPropertySymbol p => (p.Type, (context.TargetNode as PropertyDeclarationSyntax) is { } ps ? ps.Initializer?.Value ?? ps.ExpressionBody?.Expression : null, context.TargetNode),
            _ => (null, null, context.TargetNode),
        };
        Location location = member.Locations.FirstOrDefault() ?? Location.None;
        string display = member.ContainingType.Name + "." + member.Name;
        if (type is not INamedTypeSymbol { IsGenericType: true } named || named.ConstructedFrom.ToDisplayString(TypeAnalyzer.FullFormat) != "global::IpyRpc.IpyRpcEvent<T>" || !member.IsStatic)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.InvalidEvent, location, display, "it must be a static field or property of type IpyRpcEvent<T>"));
            return null;
        }

        ArgumentListSyntax? arguments = initializer switch
        {
            ObjectCreationExpressionSyntax o => o.ArgumentList,
            ImplicitObjectCreationExpressionSyntax i => i.ArgumentList,
            _ => null,
        };
        string? name = arguments is { Arguments.Count: > 0 } a ? context.SemanticModel.GetConstantValue(a.Arguments[0].Expression, cancellationToken).Value as string : null;
        if (name is null)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.InvalidEvent, location, display, "initialize it with new(\"event.name\") and a constant name, so its descriptor can name it"));
            return null;
        }

        var analyzer = new TypeAnalyzer(context.SemanticModel.Compilation);
        ITypeSymbol payloadSymbol = named.TypeArguments[0];
        TypeModel? payload = analyzer.Analyze(payloadSymbol, out string? error);
        if (payload is null)
        {
            diagnostics.Add(DiagnosticInfo.Create(Diagnostics.InvalidEvent, location, display, $"its payload type {payloadSymbol.ToDisplayString(TypeAnalyzer.ShortFormat)} cannot be serialized: {error}"));
            return null;
        }

        DocModel docs = DocParser.Parse(member, docNode);
        return new EventModel(
            name,
            member.Name,
            FunctionParser.ServiceOf(member.ContainingType),
            payload,
            payloadSymbol.ToDisplayString(TypeAnalyzer.ShortFormat),
            docs.Summary,
            docs.Remarks,
            analyzer.Objects.ToEquatableArray());
    }
}
