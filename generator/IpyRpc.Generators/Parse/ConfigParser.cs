using System.Threading;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace IpyRpc.Generators.Parse;

/// <summary>
/// Finds the glob patterns written in source as keys of a <c>GlobConfig</c> initializer
/// (<c>server.Config(new() { ["*_json"] = ... })</c>), so they can be checked against the
/// exported functions at compile time.
/// </summary>
internal static class ConfigParser
{
    /// <summary>A cheap syntactic filter: <c>["literal"] = ...</c> inside an object initializer.</summary>
    public static bool IsCandidate(SyntaxNode node, CancellationToken _)
        => node is ImplicitElementAccessSyntax { ArgumentList.Arguments.Count: 1 } access
           && access.ArgumentList.Arguments[0].Expression.IsKind(SyntaxKind.StringLiteralExpression)
           && access.Parent is AssignmentExpressionSyntax { Parent: InitializerExpressionSyntax { RawKind: (int)SyntaxKind.ObjectInitializerExpression } };

    public static ConfigPattern? Parse(GeneratorSyntaxContext context, CancellationToken cancellationToken)
    {
        var access = (ImplicitElementAccessSyntax)context.Node;
        var initializer = (InitializerExpressionSyntax)access.Parent!.Parent!;
        if (initializer.Parent is not BaseObjectCreationExpressionSyntax creation)
        {
            return null;
        }

        ITypeSymbol? type = context.SemanticModel.GetTypeInfo(creation, cancellationToken).Type;
        if (type?.ToDisplayString() != "IpyRpc.GlobConfig")
        {
            return null;
        }

        var literal = (LiteralExpressionSyntax)access.ArgumentList.Arguments[0].Expression;
        return new ConfigPattern(literal.Token.ValueText, LocationInfo.From(literal.GetLocation()));
    }
}
