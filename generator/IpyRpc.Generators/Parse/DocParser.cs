using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using IpyRpc.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace IpyRpc.Generators.Parse;

/// <summary>Reads a method's XML doc comment into plain text (for descriptors) and raw lines (for proxies).</summary>
internal static class DocParser
{
    private static readonly string[] CopiedElements = ["summary", "remarks", "param", "returns", "exception", "example"];

    public static DocModel Parse(ISymbol method, SyntaxNode? syntax)
    {
        string? xml = method.GetDocumentationCommentXml();
        if (string.IsNullOrWhiteSpace(xml) && syntax is not null)
        {
            // Without GenerateDocumentationFile the compiler does not parse doc comments; read them ourselves.
            xml = FromTrivia(syntax);
        }

        if (string.IsNullOrWhiteSpace(xml))
        {
            return new DocModel(null, null, null, EquatableArray<DocEntry>.Empty, EquatableArray<DocEntry>.Empty, EquatableArray<DocEntry>.Empty);
        }

        XElement root;
        try
        {
            root = XElement.Parse(xml, LoadOptions.PreserveWhitespace);
        }
        catch (System.Xml.XmlException)
        {
            return new DocModel(null, null, null, EquatableArray<DocEntry>.Empty, EquatableArray<DocEntry>.Empty, EquatableArray<DocEntry>.Empty);
        }

        string? Text(string name) => root.Element(name) is { } e ? Plain(e) : null;

        var parameters = root.Elements("param").Select(p => new DocEntry((string?)p.Attribute("name") ?? "", Plain(p))).ToEquatableArray();
        var exceptions = root.Elements("exception").Select(p => new DocEntry(ShortCref((string?)p.Attribute("cref") ?? ""), Plain(p))).ToEquatableArray();

        var raw = new List<DocEntry>();
        foreach (XElement e in root.Elements().Where(e => CopiedElements.Contains(e.Name.LocalName)))
        {
            string key = e.Name.LocalName == "param" ? "param:" + (string?)e.Attribute("name") : e.Name.LocalName;
            string body = string.Join("\n", e.ToString(SaveOptions.DisableFormatting).Replace("\r", "").Split('\n').Select(l => l.Trim()));
            raw.Add(new DocEntry(key, body));
        }

        return new DocModel(Text("summary"), Text("remarks"), Text("returns"), parameters, exceptions, raw.ToEquatableArray());
    }

    /// <summary>
    /// The plain <c>&lt;summary&gt;</c> of a type or member, read from the compiler's doc XML or, without
    /// GenerateDocumentationFile, from the declaration's comment; a positional record property's doc is its
    /// record's <c>&lt;param&gt;</c>.
    /// </summary>
    /// <remarks>Called while a type is analyzed, which happens once per compilation (see TypeAnalyzer.Analyze).</remarks>
    public static string? Summary(ISymbol symbol)
    {
        XElement? root = Root(symbol);
        if (root?.Element("summary") is { } summary && Plain(summary) is { Length: > 0 } text) return text;
        if (symbol is IPropertySymbol && symbol.ContainingType is { IsRecord: true } record
            && Root(record)?.Elements("param").FirstOrDefault(p => (string?)p.Attribute("name") == symbol.Name) is { } param
            && Plain(param) is { Length: > 0 } paramText)
        {
            return paramText;
        }

        return null;
    }

    private static XElement? Root(ISymbol symbol)
    {
        string? xml = symbol.GetDocumentationCommentXml();
        if (string.IsNullOrWhiteSpace(xml) && symbol.DeclaringSyntaxReferences.FirstOrDefault()?.GetSyntax() is { } syntax)
        {
            // A field's comment sits on its declaration, two levels up from the declarator.
            SyntaxNode node = syntax is VariableDeclaratorSyntax { Parent.Parent: { } declaration } ? declaration : syntax;
            xml = FromTrivia(node);
        }

        if (string.IsNullOrWhiteSpace(xml)) return null;
        try
        {
            return XElement.Parse(xml, LoadOptions.PreserveWhitespace);
        }
        catch (System.Xml.XmlException)
        {
            return null;
        }
    }

    private static string FromTrivia(SyntaxNode syntax)
    {
        // With documentation mode off (no GenerateDocumentationFile) the parser keeps `///` lines as
        // plain comments; with it on they are structured trivia. Read either.
        var text = new StringBuilder("<member>");
        foreach (SyntaxTrivia trivia in syntax.GetLeadingTrivia())
        {
            string raw = trivia.GetStructure() is DocumentationCommentTriviaSyntax doc ? doc.ToFullString()
                : trivia.IsKind(SyntaxKind.SingleLineCommentTrivia) ? trivia.ToFullString()
                : "";
            foreach (string line in raw.Replace("\r", "").Split('\n'))
            {
                string t = line.TrimStart();
                if (t.StartsWith("///", StringComparison.Ordinal)) text.AppendLine(t.Substring(3));
            }
        }

        return text.Append("</member>").ToString();
    }

    /// <summary>The text of a doc element: references become names, paragraphs become line breaks, whitespace is tidied.</summary>
    public static string Plain(XElement element)
    {
        var text = new StringBuilder();
        Append(element, text);
        return Tidy(text.ToString());
    }

    // One pass over the text: paragraphs (runs of lines between blank ones) become one line each, every run of
    // whitespace one space, and paragraphs are separated by one blank line; nothing leads or trails.
    private static string Tidy(string raw)
    {
        var result = new StringBuilder(raw.Length);
        bool lineHasText = false, space = false, paragraph = false;
        foreach (char c in raw)
        {
            if (c == '\r') continue;
            if (c == '\n')
            {
                if (!lineHasText && result.Length > 0) paragraph = true; // a blank line ends the paragraph
                space = result.Length > 0;
                lineHasText = false;
                continue;
            }

            if (char.IsWhiteSpace(c))
            {
                space |= lineHasText;
                continue;
            }

            if (result.Length > 0)
            {
                if (paragraph) result.Append("\n\n");
                else if (space) result.Append(' ');
            }

            paragraph = space = false;
            lineHasText = true;
            result.Append(c);
        }

        return result.ToString();
    }

    private static void Append(XElement element, StringBuilder text)
    {
        foreach (XNode node in element.Nodes())
        {
            switch (node)
            {
                case XText t:
                    text.Append(t.Value);
                    break;
                case XElement e:
                    switch (e.Name.LocalName)
                    {
                        case "see":
                        case "seealso":
                            text.Append(e.Value.Length > 0 ? e.Value : ShortCref((string?)e.Attribute("cref") ?? (string?)e.Attribute("langword") ?? (string?)e.Attribute("href") ?? ""));
                            break;
                        case "paramref":
                        case "typeparamref":
                            text.Append((string?)e.Attribute("name"));
                            break;
                        case "para":
                            text.Append("\n\n");
                            Append(e, text);
                            text.Append("\n\n");
                            break;
                        case "br":
                            text.Append('\n');
                            break;
                        case "item":
                            text.Append("\n- ");
                            Append(e, text);
                            break;
                        default:
                            Append(e, text);
                            break;
                    }

                    break;
            }
        }
    }

    /// <summary><c>T:System.InvalidOperationException</c> becomes <c>InvalidOperationException</c>.</summary>
    public static string ShortCref(string cref)
    {
        int colon = cref.IndexOf(':');
        string name = colon >= 0 ? cref.Substring(colon + 1) : cref;
        int paren = name.IndexOf('(');
        if (paren >= 0) name = name.Substring(0, paren);
        int dot = name.LastIndexOf('.');
        return dot >= 0 ? name.Substring(dot + 1) : name;
    }
}
