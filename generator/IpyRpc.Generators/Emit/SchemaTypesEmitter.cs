using System;
using System.Collections.Generic;
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

    /// <summary>
    /// The events the server publishes, as typed declarations to subscribe with (<c>client.SubscribeAsync(ChatEvents.Chat.Said, ...)</c>):
    /// a static class beside the client, dotted names as nested classes, each event a field with the server's docs.
    /// </summary>
    public static string? EmitEvents(SchemaModel schema)
    {
        if (schema.Events.Count == 0) return null;
        var w = new CodeWriter();
        w.Line(CodeWriter.Header);
        w.Namespace(schema.Key.Namespace);
        w.Block($$"""
            /// <summary>The events the server of {{Xml(schema.Key.SchemaFile ?? schema.Key.Name)}} publishes: subscribe with <c>client.SubscribeAsync(event, handler)</c> or <c>client.EventsAsync(event)</c>.</summary>
            {{CodeWriter.GeneratedCode}}
            public static class {{schema.EventsClass}}
            {
            """).Push();
        EmitEventLevel(w, schema.Events.Select(e => (e.EventName.Split('.'), e)).ToList(), 0, schema.EventsClass, schema.Key.SchemaFile ?? schema.Key.Name);
        w.Close();
        return w.ToString();
    }

    // One level of the events' dotted names: the events ending here as fields, the longer names in a nested class per segment.
    private static void EmitEventLevel(CodeWriter w, List<(string[] Segments, EventModel Event)> events, int depth, string enclosing, string file)
    {
        var groups = events.Where(e => e.Segments.Length > depth + 1).GroupBy(e => e.Segments[depth], StringComparer.Ordinal).ToList();
        var taken = new HashSet<string>(StringComparer.Ordinal) { enclosing };
        var classes = new List<string>(groups.Count);
        foreach (var group in groups)
        {
            string name = ServiceEmitter.Pascal(group.Key);
            while (!taken.Add(name)) name += "_";
            classes.Add(name);
        }

        bool first = true;
        foreach ((string[] _, EventModel e) in events.Where(e => e.Segments.Length == depth + 1))
        {
            string field = e.MemberName;
            if (taken.Contains(field)) field += "Event";
            while (!taken.Add(field)) field += "_";
            if (!first) w.Line();
            first = false;
            w.Block($$"""
                /// <summary>{{Xml(e.Summary ?? $"The server's event {e.EventName} (from {file}).")}}</summary>
                {{CodeWriter.If(e.Remarks is not null, $"/// <remarks>{Xml(e.Remarks ?? "")}</remarks>")}}
                /// <value>The event <c>{{Xml(e.EventName)}}</c>, whose payload is {{Xml(e.PayloadDisplay)}}.</value>
                public static readonly {{Names.Runtime}}.IpyRpcEvent<{{e.Payload.FullName}}> {{field}} = new({{Names.Literal(e.EventName)}}){{Stamp(e)}};
                """);
        }

        for (int i = 0; i < groups.Count; i++)
        {
            var group = groups[i];
            string name = classes[i];
            string prefix = string.Join(".", group.First().Segments.Take(depth + 1));
            if (!first) w.Line();
            first = false;
            w.Block($$"""
                /// <summary>The events named <c>{{Xml(prefix)}}.*</c>.</summary>
                public static class {{name}}
                {
                """).Push();
            EmitEventLevel(w, group.ToList(), depth + 1, name, file);
            w.Close();
        }
    }

    // What the schema recorded of the event, checked against the server when subscribing.
    private static string Stamp(EventModel e)
        => e.Check is { } c ? $" {{ Schema = new({Names.Literal(c.Fingerprint)}, {Names.Literal(c.Signature)}, {Names.Literal(c.File)}) }}" : "";

    // A reference-typed member the server may leave out (or send as nil) is nullable.
    private static string Source(MemberModel m)
        => m.Type.IsValueType || m.Required ? m.Type.FullName : m.Type.FullName + "?";

    private static string Xml(string text) => System.Security.SecurityElement.Escape(text).Replace("\r", "").Replace("\n\n", " <para/> ").Replace("\n", " ");
}
