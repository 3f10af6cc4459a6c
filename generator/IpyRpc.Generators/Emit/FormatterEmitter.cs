using System;
using System.Collections.Generic;
using System.Linq;
using IpyRpc.Generators.Model;

namespace IpyRpc.Generators.Emit;

/// <summary>
/// Emits one class per assembly holding a formatter for every non-built-in type the exported
/// functions use: composed collection formatters, enum formatters, and a formatter class per
/// user type and tuple. Fields are ordered so each is initialized after those it composes.
/// </summary>
internal static class FormatterEmitter
{
    public static string? Emit(IReadOnlyList<FunctionModel> functions, string assemblyKey, IReadOnlyList<EventModel>? events = null)
    {
        var types = new Dictionary<string, TypeModel>(StringComparer.Ordinal);
        var objects = new Dictionary<string, ObjectModel>(StringComparer.Ordinal);
        foreach (EventModel e in events ?? [])
        {
            Collect(e.Payload, types);
            foreach (ObjectModel o in e.Objects)
            {
                objects[o.FullName] = o;
                foreach (MemberModel m in o.Members) Collect(m.Type, types);
            }
        }

        foreach (FunctionModel f in functions)
        {
            foreach (ParameterModel p in f.Parameters) Collect(p.Type, types);
            Collect(f.ReturnType, types);
            foreach (ObjectModel o in f.Objects)
            {
                objects[o.FullName] = o;
                foreach (MemberModel m in o.Members) Collect(m.Type, types);
            }
        }

        if (types.Count == 0)
        {
            return null;
        }

        string fields = string.Join("\n", types.Values.OrderBy(Depth).ThenBy(t => Names.Field(t), StringComparer.Ordinal).Select(t => $"""
            /// <summary>{Escape(t.Display)}</summary>
            public static readonly {Names.Formatting}.IpyRpcFormatter<{Names.FormatterArgument(t)}> {Names.Field(t)} = {Create(t)};
            """));
        string registrations = string.Join("\n", types.Values.OrderBy(t => Names.Field(t), StringComparer.Ordinal).Select(t => $"{Names.Formatting}.FormatterRegistry.TryRegister({Names.Field(t)});"));
        var w = new CodeWriter();
        w.Block(CodeWriter.Header + Aliases);
        w.Namespace("IpyRpc.Generated");
        w.Block($$"""
            /// <summary>Formatters for the types the exported functions of this assembly take and return.</summary>
            {{CodeWriter.GeneratedCode}}
            internal static class {{Names.HolderName(assemblyKey)}}
            {
            {{CodeWriter.Indent(fields, 4)}}

                /// <summary>Makes these formatters known to dynamic calls (client.CallAsync&lt;T&gt;).</summary>
                [global::System.Runtime.CompilerServices.ModuleInitializer]
                internal static void Register()
                {
            {{CodeWriter.Indent(registrations, 8)}}
                }
            """).Push();
        foreach (ObjectModel o in objects.Values.OrderBy(o => o.FullName, StringComparer.Ordinal))
        {
            w.Line();
            w.Block(o.IsTuple ? Tuple(o) : Object(o));
        }

        w.Close();
        return w.ToString();
    }

    // The names this file's formatters use most, shortened.
    private const string Aliases = "using __Formatting = global::IpyRpc.Formatting;\nusing __MessagePack = global::IpyRpc.MessagePack;\nusing __Json = global::System.Text.Json;\n"
        + "using __JsonRead = global::IpyRpc.Formatting.Json.JsonRead;\nusing __Members = global::IpyRpc.Formatting.Members;\n";

    private static void Collect(TypeModel? type, Dictionary<string, TypeModel> types)
    {
        if (type is null || type.Kind == TypeKind.Builtin || types.ContainsKey(type.FullName)) return;
        types[type.FullName] = type;
        foreach (TypeModel a in type.Arguments) Collect(a, types);
    }

    // Objects, tuples and enums construct without touching other fields; composites need their elements first.
    private static int Depth(TypeModel t) => t.Kind is TypeKind.Object or TypeKind.Tuple or TypeKind.Enum or TypeKind.Builtin or TypeKind.Custom ? 0 : 1 + t.Arguments.Select(Depth).DefaultIfEmpty(0).Max();

    private static string Create(TypeModel t)
    {
        switch (t.Kind)
        {
            case TypeKind.Enum:
                return $"new {Names.Formatting}.EnumFormatter<{t.FullName}>(static v => (long)v, static n => ({t.FullName})n)";
            case TypeKind.Nullable:
                return $"new {Names.Formatting}.NullableFormatter<{t.Arguments[0].FullName}>({Names.LocalFormatter(t.Arguments[0])})";
            case TypeKind.Sequence:
                return $"new {Names.Formatting}.SequenceFormatter<{t.FullName}, {t.Arguments[0].FullName}>({Names.LocalFormatter(t.Arguments[0])}, {t.Create})";
            case TypeKind.Dictionary when t.Arguments.Count > 1:
                {
                    // Keys that are not strings: integers, GUIDs, enums.
                    TypeModel key = t.Arguments[1];
                    string keys = key.Kind == TypeKind.Enum ? $"{Names.Formatting}.DictionaryKeys.Enum<{key.FullName}>()" : $"{Names.Formatting}.DictionaryKeys.{key.Builtin}";
                    return $"new {Names.Formatting}.KeyedDictionaryFormatter<{t.FullName}, {key.FullName}, {t.Arguments[0].FullName}>({keys}, {Names.LocalFormatter(t.Arguments[0])}, {t.Create})";
                }

            case TypeKind.Dictionary:
                return $"new {Names.Formatting}.DictionaryFormatter<{t.FullName}, {t.Arguments[0].FullName}>({Names.LocalFormatter(t.Arguments[0])}, {t.Create})";
            case TypeKind.Object:
            case TypeKind.Tuple:
                return $"new {ClassName(t.FullName)}()";
            case TypeKind.Custom:
                return $"new {t.Create}()";
            default:
                throw new InvalidOperationException("No formatter to create for " + t.Kind);
        }
    }

    private static string ClassName(string fullName) => "Formatter_" + Names.Field(new TypeModel(TypeKind.Object, fullName, "", false, null, EquatableArray<TypeModel>.Empty, null, null));

    private static string Escape(string text) => text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");

    // A user type travels as a map of its members; reading accepts the member's C# name as well as its wire name.
    private static string Object(ObjectModel o)
    {
        string arg = o.IsValueType ? o.FullName : o.FullName + "?";
        MemberModel[] written = o.Members.ToArray();
        MemberModel[] read = written.Where(m => m.ConstructorIndex >= 0 || m.Settable).ToArray();
        string locals = string.Join("\n", read.Select((m, i) => $"{Names.FormatterArgument(m.Type)} m{i} = default!; bool has{i} = false;"));
        string create = $"return Create({string.Join(", ", Enumerable.Range(0, read.Length).Select(i => $"m{i}, has{i}"))});";

        string packWrites = string.Join("\n", written.Select(m => $"writer.WriteString({Names.Utf8(m.WireName)}); {Names.LocalFormatter(m.Type)}.Write(ref writer, value.{m.Name});"));
        string packReads = string.Join("\n", read.Select((m, i) =>
            $"{(i == 0 ? "if" : "else if")} (__Members.Is(key, {MemberNames(m)})) {{ m{i} = {Names.LocalFormatter(m.Type)}.Read(ref reader); has{i} = true; }}")
            .Append(read.Length == 0 ? "reader.Skip();" : "else reader.Skip();"));
        string jsonWrites = string.Join("\n", written.Select(m => $"writer.WritePropertyName({Names.Utf8(m.WireName)}); {Names.LocalFormatter(m.Type)}.Write(writer, value.{m.Name});"));
        string jsonReads = string.Join("\n", read.Select((m, i) =>
            $"{(i == 0 ? "if" : "else if")} (__Members.At(ref reader, {MemberNames(m)})) {{ m{i} = {Names.LocalFormatter(m.Type)}.Read(ref reader); has{i} = true; }}")
            .Append((read.Length == 0 ? "" : "else ") + "__Members.Skip(ref reader);"));

        // Construction: constructor parameters, then init-only members, then settable ones that were present.
        string parameters = string.Join(", ", read.Select((m, i) => $"{Names.FormatterArgument(m.Type)} m{i}, bool has{i}"));
        string requires = string.Join("\n", read.Select((m, i) => (m, i)).Where(x => x.m.Required).Select(x =>
            $"if (!has{x.i}) throw __Members.Missing({Names.Literal(o.Display)}, {Names.Literal(x.m.WireName)}, {Names.Literal(x.m.Type.Display)});"));
        var ctorArgs = new string[o.ConstructorArity];
        for (int i = 0; i < ctorArgs.Length; i++) ctorArgs[i] = "default!";
        for (int i = 0; i < read.Length; i++)
        {
            if (read[i].ConstructorIndex >= 0) ctorArgs[read[i].ConstructorIndex] = $"m{i}";
        }

        var initOnly = read.Select((m, i) => (m, i)).Where(x => x.m.ConstructorIndex < 0 && x.m.InitOnly).ToArray();
        string initLocals = string.Join("\n", initOnly.Select(x => $"var x{x.i} = has{x.i} ? m{x.i} : default!;"));
        string inits = initOnly.Length == 0 ? "" : " { " + string.Join(", ", initOnly.Select(x => $"{x.m.Name} = x{x.i}")) + " }";
        string sets = string.Join("\n", read.Select((m, i) => (m, i)).Where(x => x.m.ConstructorIndex < 0 && !x.m.InitOnly).Select(x => $"if (has{x.i}) result.{x.m.Name} = m{x.i};"));

        return $$"""
            /// <summary>Reads and writes {{Escape(o.Display)}} as a map of its members.</summary>
            private sealed class {{ClassName(o.FullName)}} : {{Names.Formatting}}.IpyRpcFormatter<{{arg}}>
            {
                public override void Write(ref {{Names.MessagePack}}.MessagePackWriter writer, {{arg}} value)
                {
                    {{MessagePackWriteGuard(o)}}
                    writer.WriteMapHeader({{written.Length}});
            {{CodeWriter.Indent(packWrites, 8)}}
                }

                public override {{arg}} Read(ref {{Names.MessagePack}}.MessagePackReader reader)
                {
                    {{MessagePackReadGuard(o)}}
                    reader.Enter();
                    int count = reader.ReadMapHeader();
            {{CodeWriter.Indent(locals, 8)}}
                    for (int i = 0; i < count; i++)
                    {
                        var key = reader.ReadStringSpan();
            {{CodeWriter.Indent(packReads, 12)}}
                    }
                    reader.Exit();
                    {{create}}
                }

                public override void Write({{Names.Json}}.Utf8JsonWriter writer, {{arg}} value)
                {
                    {{JsonWriteGuard(o)}}
                    writer.WriteStartObject();
            {{CodeWriter.Indent(jsonWrites, 8)}}
                    writer.WriteEndObject();
                }

                public override {{arg}} Read(ref {{Names.Json}}.Utf8JsonReader reader)
                {
                    {{JsonReadGuard(o)}}
                    __JsonRead.Expect(ref reader, {{Names.Json}}.JsonTokenType.StartObject, {{Names.Literal("an object (" + o.Display + ")")}});
            {{CodeWriter.Indent(locals, 8)}}
                    while (true)
                    {
                        __JsonRead.Next(ref reader);
                        if (reader.TokenType == {{Names.Json}}.JsonTokenType.EndObject) break;
            {{CodeWriter.Indent(jsonReads, 12)}}
                    }
                    {{create}}
                }

                private static {{o.FullName}} Create({{parameters}})
                {
            {{CodeWriter.Indent(requires, 8)}}
            {{CodeWriter.Indent(initLocals, 8)}}
                    {{(sets.Length == 0 ? "return" : "var result =")}} new {{o.FullName}}({{string.Join(", ", ctorArgs)}}){{inits}};
            {{CodeWriter.Indent(sets, 8)}}
                    {{CodeWriter.If(sets.Length > 0, "return result;")}}
                }
            }
            """;
    }

    // Every generated formatter opens its four methods the same way: reference types map null to
    // nil/null; value types refuse nil/null with a message naming the type.
    private static string MessagePackWriteGuard(ObjectModel o)
        => CodeWriter.If(!o.IsValueType, "if (value is null) { writer.WriteNil(); return; }");

    private static string MessagePackReadGuard(ObjectModel o) => o.IsValueType
        ? $"if (reader.TryReadNil()) throw reader.Error(\"Expected {o.Display} but found nil\");"
        : "if (reader.TryReadNil()) return null;";

    private static string JsonWriteGuard(ObjectModel o)
        => CodeWriter.If(!o.IsValueType, "if (value is null) { writer.WriteNullValue(); return; }");

    private static string JsonReadGuard(ObjectModel o) => o.IsValueType
        ? $"if (reader.TokenType == {Names.Json}.JsonTokenType.Null) throw new {Names.Formatting}.IpyRpcSerializationException(\"Expected {o.Display} but found null\");"
        : $"if (reader.TokenType == {Names.Json}.JsonTokenType.Null) return null;";

    // A member's wire name, and its C# name when that differs: the keys reading accepts.
    private static string MemberNames(MemberModel m) => m.WireName == m.Name ? Names.Utf8(m.WireName) : Names.Utf8(m.WireName) + ", " + Names.Utf8(m.Name);

    // A tuple travels as an array of its items.
    private static string Tuple(ObjectModel o)
    {
        string arg = o.IsValueType ? o.FullName : o.FullName + "?";
        MemberModel[] items = o.Members.ToArray();
        string packWrites = string.Join("\n", items.Select(m => $"{Names.LocalFormatter(m.Type)}.Write(ref writer, value.{m.Name});"));
        string packReads = string.Join("\n", items.Select((m, i) => $"var m{i} = {Names.LocalFormatter(m.Type)}.Read(ref reader);"));
        string jsonWrites = string.Join("\n", items.Select(m => $"{Names.LocalFormatter(m.Type)}.Write(writer, value.{m.Name});"));
        string jsonReads = string.Join("\n", items.Select((m, i) => $"""
            __JsonRead.Next(ref reader);
            var m{i} = {Names.LocalFormatter(m.Type)}.Read(ref reader);
            """));
        return $$"""
            /// <summary>Reads and writes {{Escape(o.Display)}} as an array of {{items.Length}}.</summary>
            private sealed class {{ClassName(o.FullName)}} : {{Names.Formatting}}.IpyRpcFormatter<{{arg}}>
            {
                public override void Write(ref {{Names.MessagePack}}.MessagePackWriter writer, {{arg}} value)
                {
                    {{MessagePackWriteGuard(o)}}
                    writer.WriteArrayHeader({{items.Length}});
            {{CodeWriter.Indent(packWrites, 8)}}
                }

                public override {{arg}} Read(ref {{Names.MessagePack}}.MessagePackReader reader)
                {
                    {{MessagePackReadGuard(o)}}
                    int start = reader.Position;
                    if (reader.ReadArrayHeader() != {{items.Length}}) throw new {{Names.MessagePack}}.MessagePackSerializationException("Expected an array of {{items.Length}} elements for {{o.Display}}", start);
            {{CodeWriter.Indent(packReads, 8)}}
                    return {{Construct(o, items.Length)}};
                }

                public override void Write({{Names.Json}}.Utf8JsonWriter writer, {{arg}} value)
                {
                    {{JsonWriteGuard(o)}}
                    writer.WriteStartArray();
            {{CodeWriter.Indent(jsonWrites, 8)}}
                    writer.WriteEndArray();
                }

                public override {{arg}} Read(ref {{Names.Json}}.Utf8JsonReader reader)
                {
                    {{JsonReadGuard(o)}}
                    __JsonRead.Expect(ref reader, {{Names.Json}}.JsonTokenType.StartArray, {{Names.Literal("an array (" + o.Display + ")")}});
            {{CodeWriter.Indent(jsonReads, 8)}}
                    __JsonRead.Next(ref reader);
                    __JsonRead.Expect(ref reader, {{Names.Json}}.JsonTokenType.EndArray, {{Names.Literal("the end of the " + items.Length + "-element array")}});
                    return {{Construct(o, items.Length)}};
                }
            }
            """;
    }

    private static string Construct(ObjectModel o, int count)
    {
        string args = string.Join(", ", Enumerable.Range(0, count).Select(i => "m" + i));
        // A value tuple's FullName is its (a, b) form, which only a tuple literal can construct.
        return o.IsValueType && o.FullName.StartsWith("(", StringComparison.Ordinal) ? $"({args})" : $"new {o.FullName}({args})";
    }
}
