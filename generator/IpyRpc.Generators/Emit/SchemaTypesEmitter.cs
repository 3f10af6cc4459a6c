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
        w.Open("namespace " + schema.Key.Namespace);
        bool first = true;
        foreach (TypeModel e in schema.Enums)
        {
            if (!first) w.Line();
            first = false;
            Summary(w, e.Doc ?? $"The server's enum {e.Display} (from {schema.Key.SchemaFile}).");
            w.Line(CodeWriter.GeneratedCode);
            w.Open($"public enum {e.Display}{(e.EnumUnderlying is null or "int" ? "" : " : " + e.EnumUnderlying)}");
            foreach (EnumMemberModel m in e.EnumMembers)
            {
                if (m.Doc is not null) Summary(w, m.Doc);
                w.Line($"{m.Name} = {m.Value},");
            }

            w.Close();
        }

        foreach (ObjectModel o in schema.Records)
        {
            if (!first) w.Line();
            first = false;
            Summary(w, o.Doc ?? $"The server's type {o.Display} (from {schema.Key.SchemaFile}).");
            foreach (MemberModel m in o.Members)
            {
                w.Line($"/// <param name=\"{m.Name}\">{Xml(m.Doc ?? $"The <c>{m.WireName}</c> member.")}</param>");
            }

            w.Line(CodeWriter.GeneratedCode);
            string parameters = string.Join(", ", o.Members.Select(m => $"{Source(m)} {m.Name}"));
            w.Line($"public {(o.IsValueType ? "record struct" : "sealed record")} {o.Display}({parameters});");
        }

        w.Close();
        return w.ToString();
    }

    // A reference-typed member the server may leave out (or send as nil) is nullable.
    private static string Source(MemberModel m)
        => m.Type.IsValueType || m.Required ? m.Type.FullName : m.Type.FullName + "?";

    private static void Summary(CodeWriter w, string text) => w.Line($"/// <summary>{Xml(text)}</summary>");

    private static string Xml(string text) => System.Security.SecurityElement.Escape(text).Replace("\r", "").Replace("\n\n", " <para/> ").Replace("\n", " ");
}
