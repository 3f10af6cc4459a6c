using System.Linq;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// Declares the records and enums a client generated from a schema file uses, with the docs the server
/// wrote for them. Records are positional (members in the server's order); a member the server requires
/// has no default and, for reference types, is not nullable.
/// </summary>
internal static class SchemaTypesEmitter
{
    public static string? Emit(SchemaModel schema)
    {
        if (schema.Records.Count == 0 && schema.Enums.Count == 0) return null;
        var w = new CodeWriter();
        w.Line(CodeWriter.Header);
        w.Namespace(schema.Key.Namespace);
        bool first = true;
        foreach (TypeModel e in schema.Enums)
        {
            if (!first) w.Line();
            first = false;
            // Every member has a doc, so a client project that writes its documentation file gets no warning for one the server left bare.
            string members = string.Join("\n", e.EnumMembers.Select(m => $"/// <summary>{Xml(m.Doc ?? $"{e.Display}.{m.Name} on the server ({m.Value}).")}</summary>\n{m.Name} = {m.Value},"));
            w.Block($$"""
                /// <summary>{{Xml(e.Doc ?? $"The server's enum {e.Display} (from {schema.Key.SchemaFile}).")}}</summary>
                {{CodeWriter.GeneratedCode}}{{(e.EnumFlags ? "\n[global::System.Flags]" : "")}}
                public enum {{e.Display}}{{(e.EnumUnderlying is null or "int" ? "" : " : " + e.EnumUnderlying)}}
                {
                {{CodeWriter.Indent(members, 4)}}
                }
                """);
        }

        foreach (ObjectModel o in schema.Records)
        {
            if (!first) w.Line();
            first = false;
            string parameterDocs = string.Join("\n", o.Members.Select(m => $"/// <param name=\"{m.Name}\">{Xml(m.Doc ?? $"The <c>{m.WireName}</c> member.")}</param>"));
            string parameters = string.Join(", ", o.Members.Select(m => $"{Source(m)} {m.Name}"));
            w.Block($$"""
                /// <summary>{{Xml(o.Doc ?? $"The server's type {o.Display} (from {schema.Key.SchemaFile}).")}}</summary>
                {{parameterDocs}}
                {{CodeWriter.GeneratedCode}}
                public {{(o.IsValueType ? "record struct" : "sealed record")}} {{o.Display}}({{parameters}});
                """);
        }

        return w.ToString();
    }

    // A reference-typed member the server may leave out (or send as nil) is nullable.
    private static string Source(MemberModel m)
        => m.Type.IsValueType || m.Required ? m.Type.FullName : m.Type.FullName + "?";

    private static string Xml(string text) => System.Security.SecurityElement.Escape(text).Replace("\r", "").Replace("\n\n", " <para/> ").Replace("\n", " ");
}
