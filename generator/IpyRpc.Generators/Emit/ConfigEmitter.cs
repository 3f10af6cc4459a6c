using System.Collections.Generic;
using System.Linq;
using IpyRpc.Generators.Model;
using Glob = IpyRpc.Internal.GlobMatcher;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// Checks config patterns written in source against the exported functions (a pattern that
/// matches nothing is a warning) and emits the bindings: which functions each pattern selects.
/// </summary>
internal static class ConfigEmitter
{
    public static IEnumerable<DiagnosticInfo> Check(IReadOnlyList<ConfigPattern> patterns, IReadOnlyList<string> functions)
    {
        foreach (ConfigPattern p in patterns)
        {
            if (Glob.Problem(p.Pattern) is { } problem)
            {
                yield return new DiagnosticInfo(Diagnostics.InvalidPattern, p.Location, new[] { p.Pattern, problem }.ToEquatableArray());
            }
            else if (functions.Count > 0 && !functions.Any(f => Glob.IsMatch(p.Pattern, f)))
            {
                // With no exports here the functions live elsewhere (a referenced library): nothing to check against.
                string known = string.Join(", ", functions.Take(12)) + (functions.Count > 12 ? ", ..." : "");
                yield return new DiagnosticInfo(Diagnostics.PatternMatchesNothing, p.Location, new[] { p.Pattern, known }.ToEquatableArray());
            }
        }
    }

    public static string? Emit(IReadOnlyList<string> patterns, IReadOnlyList<string> functions, string assemblyKey)
    {
        string[] distinct = patterns.Where(p => Glob.Problem(p) is null).Distinct().OrderBy(p => p, System.StringComparer.Ordinal).ToArray();
        if (distinct.Length == 0) return null;
        string entries = string.Join("\n", distinct.Select(p =>
            $"[{Names.Literal(p)}] = new string[] {{ {string.Join(", ", functions.Where(f => Glob.IsMatch(p, f)).OrderBy(f => f, System.StringComparer.Ordinal).Select(m => Names.Literal(m)))} }},"));
        var w = new CodeWriter();
        w.Line(CodeWriter.Header);
        w.Namespace("IpyRpc.Generated");
        w.Block($$"""
            /// <summary>The config patterns written in this assembly and the exported functions each one selects, bound at compile time.</summary>
            {{CodeWriter.GeneratedCode}}
            internal static class ConfigBindings_{{assemblyKey}}
            {
                /// <summary>Pattern to matching function names.</summary>
                public static readonly global::System.Collections.Generic.IReadOnlyDictionary<string, string[]> Patterns = new global::System.Collections.Generic.Dictionary<string, string[]>
                {
            {{CodeWriter.Indent(entries, 8)}}
                };
            }
            """);
        return w.ToString();
    }
}
